// noise_vectors FILE: runs Noise test vectors in the cacophony JSON format
// ({"vectors": [{protocol_name, init_*, resp_*, handshake_hash?, messages}]})
// against crypto/noise_handshake.h. Every vector whose protocol this
// implementation supports is played through both sides: each handshake and
// transport ciphertext must match byte for byte, the receiver must recover
// the payload, and both sides must reach the given handshake hash. Vectors for
// unsupported protocols are skipped and listed. The last line of output is
// exactly "N passed, M failed, K skipped"; the exit status is non-zero if
// anything failed or nothing passed.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/noise_handshake.h"

namespace dpnode::crypto::noise {
namespace {

using nlohmann::json;

Result<Bytes> HexField(const json& v, const char* field) {
  auto it = v.find(field);
  if (it == v.end() || !it->is_string()) {
    return Status::InvalidArgument(std::string("missing hex field ") + field);
  }
  Result<Bytes> bytes = HexDecode(it->get<std::string>());
  if (!bytes.ok()) return bytes.status().WithContext(field);
  return bytes;
}

Result<std::optional<Bytes>> OptionalHexField(const json& v, const char* field) {
  if (!v.contains(field)) return std::optional<Bytes>();
  Result<Bytes> bytes = HexField(v, field);
  if (!bytes.ok()) return bytes.status();
  return std::optional<Bytes>(std::move(bytes).value());
}

Result<std::optional<KeyPair>> OptionalKeyPair(const json& v, const char* field) {
  Result<std::optional<Bytes>> bytes = OptionalHexField(v, field);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<KeyPair>();
  if ((*bytes)->size() != kDhLen)
    return Status::InvalidArgument(std::string(field) + ": not 32 bytes");
  return std::optional<KeyPair>(KeyPair::FromPrivate(PrivateKey(**bytes)));
}

Result<std::optional<PublicKey>> OptionalPublicKey(const json& v, const char* field) {
  Result<std::optional<Bytes>> bytes = OptionalHexField(v, field);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<PublicKey>();
  if ((*bytes)->size() != kDhLen)
    return Status::InvalidArgument(std::string(field) + ": not 32 bytes");
  PublicKey key{};
  std::copy((*bytes)->begin(), (*bytes)->end(), key.begin());
  return std::optional<PublicKey>(key);
}

// One side's config from the fields prefixed "init_" or "resp_".
Result<HandshakeConfig> SideConfig(const json& v, const std::string& side, Role role) {
  HandshakeConfig config;
  config.protocol_name = v.at("protocol_name").get<std::string>();
  config.role = role;
  const std::string p = side + "_";
  Result<std::optional<Bytes>> prologue = OptionalHexField(v, (p + "prologue").c_str());
  if (!prologue.ok()) return prologue.status();
  if (prologue->has_value()) config.prologue = **prologue;
  auto s = OptionalKeyPair(v, (p + "static").c_str());
  auto e = OptionalKeyPair(v, (p + "ephemeral").c_str());
  auto rs = OptionalPublicKey(v, (p + "remote_static").c_str());
  auto re = OptionalPublicKey(v, (p + "remote_ephemeral").c_str());
  for (const Status* st : {&s.status(), &e.status(), &rs.status(), &re.status()}) {
    if (!st->ok()) return *st;
  }
  config.local_static = *s;
  config.local_ephemeral = *e;
  config.remote_static = *rs;
  config.remote_ephemeral = *re;
  if (v.contains(p + "psks")) {
    for (const json& psk : v.at(p + "psks")) {
      Result<Bytes> bytes = HexDecode(psk.get<std::string>());
      if (!bytes.ok()) return bytes.status().WithContext(p + "psks");
      if (bytes->size() != kKeyLen) return Status::InvalidArgument(p + "psks: PSK not 32 bytes");
      config.psks.emplace_back(*bytes);
    }
  }
  return config;
}

Status Mismatch(const std::string& what, size_t index, ByteView got, ByteView want) {
  return Status::Corruption(what + " of message " + std::to_string(index) + " differs: got " +
                            HexEncode(got) + ", want " + HexEncode(want));
}

// Sends message `index` from `sender` to `receiver` and checks both ends.
Status Exchange(size_t index, const json& m, HandshakeState* sender, HandshakeState* receiver) {
  Result<Bytes> payload = HexField(m, "payload");
  Result<Bytes> want = HexField(m, "ciphertext");
  if (!payload.ok()) return payload.status();
  if (!want.ok()) return want.status();
  Result<Bytes> got = sender->WriteMessage(*payload);
  if (!got.ok()) return got.status().WithContext("writing message " + std::to_string(index));
  if (*got != *want) return Mismatch("handshake ciphertext", index, *got, *want);
  Result<Bytes> read = receiver->ReadMessage(*got);
  if (!read.ok()) return read.status().WithContext("reading message " + std::to_string(index));
  if (*read != *payload) return Mismatch("decrypted payload", index, *read, *payload);
  return Status::Ok();
}

Status ExchangeTransport(size_t index, const json& m, CipherState* send, CipherState* receive) {
  Result<Bytes> payload = HexField(m, "payload");
  Result<Bytes> want = HexField(m, "ciphertext");
  if (!payload.ok()) return payload.status();
  if (!want.ok()) return want.status();
  Result<Bytes> got = send->EncryptWithAd(ByteView(), *payload);
  if (!got.ok()) return got.status().WithContext("encrypting message " + std::to_string(index));
  if (*got != *want) return Mismatch("transport ciphertext", index, *got, *want);
  Result<Bytes> read = receive->DecryptWithAd(ByteView(), *got);
  if (!read.ok()) return read.status().WithContext("decrypting message " + std::to_string(index));
  if (*read != *payload) return Mismatch("decrypted transport payload", index, *read, *payload);
  return Status::Ok();
}

Status RunVector(const json& v) {
  Result<HandshakeConfig> init_config = SideConfig(v, "init", Role::kInitiator);
  Result<HandshakeConfig> resp_config = SideConfig(v, "resp", Role::kResponder);
  if (!init_config.ok()) return init_config.status();
  if (!resp_config.ok()) return resp_config.status();
  Result<HandshakeState> init = HandshakeState::Create(std::move(init_config).value());
  if (!init.ok()) return init.status().WithContext("initiator");
  Result<HandshakeState> resp = HandshakeState::Create(std::move(resp_config).value());
  if (!resp.ok()) return resp.status().WithContext("responder");
  const json& messages = v.at("messages");
  size_t index = 0;
  for (; index < messages.size() && !init->IsComplete(); ++index) {
    const bool init_sends = init->IsMyTurn();
    if (init_sends == resp->IsMyTurn()) {
      return Status::Internal("both or neither side may write message " + std::to_string(index));
    }
    DPNODE_RETURN_IF_ERROR(init_sends ? Exchange(index, messages[index], &*init, &*resp)
                                      : Exchange(index, messages[index], &*resp, &*init));
  }
  if (!init->IsComplete() || !resp->IsComplete()) {
    return Status::InvalidArgument("vector ends before the handshake completes");
  }
  if (!ConstantTimeEqual(init->handshake_hash(), resp->handshake_hash())) {
    return Status::Corruption("initiator and responder handshake hashes differ");
  }
  if (v.contains("handshake_hash")) {
    Result<Bytes> want = HexField(v, "handshake_hash");
    if (!want.ok()) return want.status();
    if (!ConstantTimeEqual(init->handshake_hash(), *want)) {
      return Status::Corruption("handshake hash " + HexEncode(init->handshake_hash()) + ", want " +
                                HexEncode(*want));
    }
  }
  Result<TransportCiphers> init_ciphers = init->Split();
  Result<TransportCiphers> resp_ciphers = resp->Split();
  if (!init_ciphers.ok()) return init_ciphers.status();
  if (!resp_ciphers.ok()) return resp_ciphers.status();
  const bool one_way = init->pattern().one_way;
  for (; index < messages.size(); ++index) {
    // Transport messages keep alternating where the handshake left off;
    // one-way patterns only ever send initiator -> responder.
    const bool init_sends = one_way || index % 2 == 0;
    TransportCiphers& from = init_sends ? *init_ciphers : *resp_ciphers;
    TransportCiphers& to = init_sends ? *resp_ciphers : *init_ciphers;
    if (!from.send || !to.receive) return Status::Internal("no transport cipher for a direction");
    DPNODE_RETURN_IF_ERROR(ExchangeTransport(index, messages[index], &*from.send, &*to.receive));
  }
  return Status::Ok();
}

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s VECTORS.json\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("vectors") ||
      !doc["vectors"].is_array()) {
    std::fprintf(stderr, "%s: not a JSON object with a \"vectors\" array\n", argv[1]);
    return 2;
  }
  int passed = 0;
  int failed = 0;
  int skipped = 0;
  const json& vectors = doc["vectors"];
  for (size_t i = 0; i < vectors.size(); ++i) {
    const json& v = vectors[i];
    std::string name = v.value("protocol_name", std::string("<no protocol_name>"));
    Result<HandshakePattern> pattern = ParseProtocolName(name);
    if (!pattern.ok()) {
      std::printf("SKIP #%zu %s: %s\n", i, name.c_str(), pattern.status().message().c_str());
      ++skipped;
      continue;
    }
    Status status;
    try {  // nlohmann::json::at() throws on a malformed vector; count it as a failure
      status = RunVector(v);
    } catch (const std::exception& e) {
      status = Status::InvalidArgument(std::string("malformed vector: ") + e.what());
    }
    if (status.ok()) {
      std::printf("PASS #%zu %s\n", i, name.c_str());
      ++passed;
    } else {
      std::printf("FAIL #%zu %s: %s\n", i, name.c_str(), status.ToString().c_str());
      ++failed;
    }
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return (failed == 0 && passed > 0) ? 0 : 1;
}

}  // namespace
}  // namespace dpnode::crypto::noise

int main(int argc, char** argv) { return dpnode::crypto::noise::Main(argc, argv); }
