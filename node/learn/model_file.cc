// Model file writing and reading.
#include "node/learn/model_file.h"

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace dpnode::learn {
namespace {

constexpr char kMagic[8] = {'D', 'P', 'N', 'M', 'O', 'D', 'L', '1'};

std::string Hex(const uint8_t* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kHex[p[i] >> 4];
    s += kHex[p[i] & 15];
  }
  return s;
}

bool FromHex(const std::string& s, uint8_t* out, size_t n) {
  if (s.size() != 2 * n) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < n; ++i) {
    const int hi = nib(s[2 * i]), lo = nib(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

nlohmann::json Header(const ModelFile& m) {
  nlohmann::json layout = nlohmann::json::array();
  for (const ParameterInfo& p : ParameterLayout(m.spec)) {
    layout.push_back({{"name", p.name}, {"shape", p.shape}, {"offset", p.offset}});
  }
  return {{"format", "dpnode-model-v1"},
          {"model_fingerprint", ModelFingerprintHex(m.fingerprint)},
          {"schema_fingerprint", Hex(m.schema_fingerprint.data(), m.schema_fingerprint.size())},
          {"architecture",
           {{"kind", ModelKindName(m.spec.kind)},
            {"input_dim", m.spec.input_dim},
            {"num_classes", m.spec.num_classes},
            {"hidden", m.spec.hidden},
            {"activation", ActivationName(m.spec.activation)},
            {"dropout", m.spec.dropout},
            {"canonical", CanonicalArchitecture(m.spec)}}},
          {"parameter_count", m.parameters.size()},
          {"parameters", layout},
          {"dtype", "float32-le"},
          {"feature_names", m.feature_names},
          {"class_names", m.class_names}};
}

Status WriteAtomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::IoError(tmp + ": " + std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) return Status::IoError(tmp + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError(path + ": rename: " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

Status WriteModelFile(const std::string& path, const ModelFile& model,
                      const std::string& metadata_json) {
  DPNODE_RETURN_IF_ERROR(ValidateModelSpec(model.spec));
  if (static_cast<int64_t>(model.parameters.size()) != ParameterCount(model.spec)) {
    return Status::InvalidArgument("parameter count does not match the architecture");
  }
  const nlohmann::json header = Header(model);
  const std::string header_text = header.dump();
  std::string bytes(kMagic, sizeof(kMagic));
  const uint32_t h = static_cast<uint32_t>(header_text.size());
  for (int i = 0; i < 4; ++i) bytes += static_cast<char>((h >> (8 * i)) & 0xff);
  bytes += header_text;
  for (float f : model.parameters) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int i = 0; i < 4; ++i) bytes += static_cast<char>((u >> (8 * i)) & 0xff);
  }
  uint8_t digest[32];
  crypto_generichash(digest, sizeof(digest), reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size(), nullptr, 0);
  bytes.append(reinterpret_cast<const char*>(digest), sizeof(digest));

  nlohmann::json sidecar = header;
  sidecar["model_file"] = path;
  if (!metadata_json.empty()) {
    nlohmann::json meta = nlohmann::json::parse(metadata_json, nullptr, false);
    if (meta.is_discarded() || !meta.is_object()) {
      return Status::InvalidArgument("model metadata is not a JSON object");
    }
    sidecar["training"] = meta;
  }
  DPNODE_RETURN_IF_ERROR(WriteAtomically(path, bytes));
  return WriteAtomically(path + ".json", sidecar.dump(2) + "\n");
}

Result<ModelFile> ReadModelFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  auto corrupt = [&](const std::string& why) { return Status::Corruption(path + ": " + why); };
  if (bytes.size() < sizeof(kMagic) + 4 + 32 || std::memcmp(bytes.data(), kMagic, 8) != 0) {
    return corrupt("not a dpnode model file");
  }
  uint8_t digest[32];
  crypto_generichash(digest, sizeof(digest), reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size() - 32, nullptr, 0);
  if (sodium_memcmp(digest, bytes.data() + bytes.size() - 32, 32) != 0) {
    return corrupt("checksum mismatch");
  }
  uint32_t h = 0;
  for (int i = 0; i < 4; ++i) h |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[8 + static_cast<size_t>(i)])) << (8 * i);
  if (12 + static_cast<size_t>(h) + 32 > bytes.size()) return corrupt("header length out of range");
  nlohmann::json j = nlohmann::json::parse(bytes.substr(12, h), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("header is not JSON");
  ModelFile m;
  try {
    const nlohmann::json& a = j.at("architecture");
    Result<ModelKind> kind = ParseModelKind(a.at("kind").get<std::string>());
    Result<Activation> act = ParseActivation(a.at("activation").get<std::string>());
    if (!kind.ok() || !act.ok()) return corrupt("bad architecture");
    m.spec.kind = *kind;
    m.spec.activation = *act;
    m.spec.input_dim = a.at("input_dim").get<int64_t>();
    m.spec.num_classes = a.at("num_classes").get<int64_t>();
    m.spec.hidden = a.at("hidden").get<std::vector<int64_t>>();
    m.spec.dropout = a.at("dropout").get<double>();
    m.feature_names = j.at("feature_names").get<std::vector<std::string>>();
    m.class_names = j.at("class_names").get<std::vector<std::string>>();
    if (!FromHex(j.at("schema_fingerprint").get<std::string>(), m.schema_fingerprint.data(), 32) ||
        !FromHex(j.at("model_fingerprint").get<std::string>(), m.fingerprint.data(), 32)) {
      return corrupt("bad fingerprint");
    }
  } catch (const std::exception& e) {
    return corrupt(std::string("header: ") + e.what());
  }
  if (!ValidateModelSpec(m.spec).ok()) return corrupt("invalid architecture");
  if (ComputeModelFingerprint(m.schema_fingerprint, m.spec) != m.fingerprint) {
    return corrupt("model fingerprint does not match its architecture");
  }
  const size_t count = static_cast<size_t>(ParameterCount(m.spec));
  if (12 + static_cast<size_t>(h) + 4 * count + 32 != bytes.size()) {
    return corrupt("parameter block has the wrong size");
  }
  m.parameters.resize(count);
  const char* p = bytes.data() + 12 + h;
  for (size_t i = 0; i < count; ++i) {
    uint32_t u = 0;
    for (int k = 0; k < 4; ++k) u |= static_cast<uint32_t>(static_cast<uint8_t>(p[4 * i + static_cast<size_t>(k)])) << (8 * k);
    std::memcpy(&m.parameters[i], &u, 4);
  }
  return m;
}

}  // namespace dpnode::learn
