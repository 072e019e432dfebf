#include "common/mqtt_protocol.hpp"

#include <nlohmann/json.hpp>

#include "common/bounded_parse.hpp"

namespace edgeloop::mqtt {
std::optional<std::string> DeviceOfSamplesTopic(std::string_view topic) {
  constexpr std::string_view kPrefix = kDevicesPrefix, kLeaf = "/samples";
  if (topic.size() <= kPrefix.size() + kLeaf.size() || topic.substr(0, kPrefix.size()) != kPrefix ||
      topic.substr(topic.size() - kLeaf.size()) != kLeaf)
    return std::nullopt;
  std::string_view device =
      topic.substr(kPrefix.size(), topic.size() - kPrefix.size() - kLeaf.size());
  if (device.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(device);
}

std::optional<std::pair<std::string, std::string>> SplitDeviceTopic(std::string_view topic) {
  constexpr std::string_view kPrefix = kDevicesPrefix;
  if (topic.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view rest = topic.substr(kPrefix.size());
  size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos || slash + 1 == rest.size() ||
      rest.find('/', slash + 1) != std::string_view::npos)
    return std::nullopt;
  return std::make_pair(std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1)));
}

std::string EncodeAck(const Ack& ack) {
  if (ack.is_event) {
    nlohmann::json j = {{"event", ack.event_id}};
    if (ack.ok()) {
      j["stored"] = true;
    } else {
      j["error"] = ack.error;
      j["status"] = ack.status;
    }
    return j.dump();
  }
  if (ack.ok())
    return nlohmann::json{{"acked_through", ack.acked_through},
                          {"accepted", ack.accepted},
                          {"duplicates", ack.duplicates}}
        .dump();
  nlohmann::json j = {{"error", ack.error}, {"status", ack.status}};
  if (ack.last_seq > 0) j["last_seq"] = ack.last_seq;
  return j.dump();
}

Result<Ack> ParseAck(std::string_view payload) {
  ParseLimits limits;
  limits.max_bytes = 64 << 10;
  limits.max_depth = 4;
  limits.max_nodes = 64;
  auto j = ParseJsonBounded(payload, "ack message", limits);
  if (!j.ok()) return j.error();
  if (!j->is_object()) return Error(Errc::kFormat, "ack message is not a JSON object");
  auto number = [&](const char* key, uint64_t& out) -> Status {
    auto it = j->find(key);
    if (it == j->end()) return Status::Ok();
    if (!it->is_number_unsigned())
      return Error(Errc::kFormat, std::string("ack message: ") + key + " is not a count");
    out = it->get<uint64_t>();
    return Status::Ok();
  };
  Ack ack;
  if (j->contains("event")) {
    ack.is_event = true;
    EDGELOOP_RETURN_IF_ERROR(number("event", ack.event_id));
  }
  if (auto e = j->find("error"); e != j->end()) {
    if (!e->is_string() || e->get<std::string>().empty())
      return Error(Errc::kFormat, "ack message: error is not a message");
    ack.error = e->get<std::string>();
    auto s = j->find("status");
    ack.status = s != j->end() && s->is_number_integer() ? s->get<int>() : 0;
    EDGELOOP_RETURN_IF_ERROR(number("last_seq", ack.last_seq));
    return ack;
  }
  if (ack.is_event) {
    if (j->value("stored", false) != true)
      return Error(Errc::kFormat, "event ack has neither stored nor error");
    return ack;
  }
  if (!j->contains("acked_through"))
    return Error(Errc::kFormat, "ack message has neither acked_through nor error");
  EDGELOOP_RETURN_IF_ERROR(number("acked_through", ack.acked_through));
  EDGELOOP_RETURN_IF_ERROR(number("accepted", ack.accepted));
  EDGELOOP_RETURN_IF_ERROR(number("duplicates", ack.duplicates));
  return ack;
}

}  // namespace edgeloop::mqtt
