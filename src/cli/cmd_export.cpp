// edgeloop export: a trained model as ONNX.
#include <cstdio>
#include <filesystem>

#include "cli/command.hpp"
#include "common/worker_protocol.hpp"
#include "ml/export_onnx.hpp"

namespace edgeloop::cli {

void RegisterExport(CLI::App& root) {
  struct Args {
    std::string model, out;
    RequestOption request;
  };
  auto a = std::make_shared<Args>();
  auto* sub = root.add_subcommand(
      "export", "Export a trained model as ONNX (opset 13, checked, with metadata)");
  sub->add_option("--model", a->model, "model directory")->required();
  sub->add_option("--out", a->out, "ONNX file to write")->required();
  a->request.AddTo(sub);
  SetAction(sub, [a] {
    if (int rc = a->request.Check(); rc != 0) return rc;
    if (a->request.given()) {
      auto r = worker::ReadRequest(a->request.path, worker::ParseExportRequest);
      if (!r.ok()) return RequestError("export", r.error());
      a->model = r->model;
      a->out = r->out;
    }
    auto m = ml::LoadModel(a->model);
    if (!m.ok()) return ReportError("export", m.error());
    if (auto st = ml::ExportOnnxFile(*m, a->out); !st.ok())
      return ReportError("export", st.error());
    std::printf("wrote %s (%ju bytes, opset %d, model hash %s)\n", a->out.c_str(),
                static_cast<uintmax_t>(std::filesystem::file_size(a->out)), ml::kOnnxOpset,
                m->info.ModelHash().substr(0, 12).c_str());
    return 0;
  });
}

}  // namespace edgeloop::cli
