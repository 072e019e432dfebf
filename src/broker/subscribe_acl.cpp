// edgeloop's subscribe ACL, a Mosquitto 2.0 plugin (edgeloop_mosquitto_acl.so, loaded by the
// mosquitto.conf that `edgeloop mqtt-config` writes; docs/scale-out.md).
//
// Mosquitto's ACL file (acl_file) decides what a client may publish and what the broker
// delivers to it, but it grants every SUBSCRIBE (Mosquitto 2.0.11, src/security_default.c:
// "FIXME - implement ACL subscription strings"): a device subscribing to another device's
// acks gets SUBACK "granted" and then never a message. This plugin refuses such
// subscriptions outright (SUBACK 0x80), so a misconfigured or hostile device learns at once:
//
//   a device (user name = its certificate's common name = its id) may subscribe to exactly
//   edgeloop/devices/<id>/acks and edgeloop/devices/<id>/update;
//   edgeloop-ingest may subscribe to any filter under edgeloop/, shared or not.
//
// For everything else (publish, delivery) it defers to the ACL file, which keeps the rules
// in one place for those. Plugin callbacks run before the ACL file's, in load order.
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include <string_view>

#include "common/mqtt_protocol.hpp"

namespace {

namespace mqtt = edgeloop::mqtt;

mosquitto_plugin_id_t* g_plugin = nullptr;

// A shared subscription "$share/<group>/<filter>" as its filter.
std::string_view WithoutShare(std::string_view filter) {
  constexpr std::string_view kShare = "$share/";
  if (filter.substr(0, kShare.size()) != kShare) return filter;
  const size_t slash = filter.find('/', kShare.size());
  return slash == std::string_view::npos ? std::string_view() : filter.substr(slash + 1);
}

bool MaySubscribe(std::string_view user, std::string_view filter) {
  if (user == mqtt::kIngestIdentity) {
    const std::string_view f = WithoutShare(filter);
    return f.substr(0, std::string_view(mqtt::kTopicRoot).size()) == mqtt::kTopicRoot;
  }
  for (const char* leaf : mqtt::kDeviceReads)
    if (filter == mqtt::DeviceTopic(user, leaf)) return true;
  return false;
}

int OnAclCheck(int, void* event_data, void*) {
  const auto* ed = static_cast<const mosquitto_evt_acl_check*>(event_data);
  if (ed->access != MOSQ_ACL_SUBSCRIBE) return MOSQ_ERR_PLUGIN_DEFER;
  const char* user = mosquitto_client_username(ed->client);
  if (user != nullptr && ed->topic != nullptr && MaySubscribe(user, ed->topic))
    return MOSQ_ERR_PLUGIN_DEFER;  // the ACL file has the last word (it grants subscriptions)
  mosquitto_log_printf(MOSQ_LOG_NOTICE, "edgeloop ACL: %s (%s) may not subscribe to %s",
                       user != nullptr ? user : "no user name", mosquitto_client_id(ed->client),
                       ed->topic != nullptr ? ed->topic : "");
  return MOSQ_ERR_ACL_DENIED;
}

}  // namespace

extern "C" {

int mosquitto_plugin_version(int supported_version_count, const int* supported_versions) {
  for (int i = 0; i < supported_version_count; ++i)
    if (supported_versions[i] == 5) return 5;
  return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier, void** userdata,
                          mosquitto_opt* options, int option_count) {
  g_plugin = identifier;
  mosquitto_log_printf(MOSQ_LOG_INFO, "edgeloop ACL: subscriptions limited to own topics");
  return mosquitto_callback_register(g_plugin, MOSQ_EVT_ACL_CHECK, OnAclCheck, nullptr, nullptr);
}

int mosquitto_plugin_cleanup(void* userdata, mosquitto_opt* options, int option_count) {
  return mosquitto_callback_unregister(g_plugin, MOSQ_EVT_ACL_CHECK, OnAclCheck, nullptr);
}

}  // extern "C"
