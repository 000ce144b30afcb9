// HandshakeState: validation of a config against its pattern, then the token
// loop of Noise spec section 5.3.
#include "crypto/noise_handshake.h"

#include <utility>

#include "base/check.h"

namespace dpnode::crypto::noise {
namespace {

const char* RoleName(bool initiator) { return initiator ? "initiator" : "responder"; }

// Walks the whole pattern from one side's point of view and checks that every
// key a token needs exists by then, so that a config error surfaces in
// Create() and not halfway through a handshake with a peer.
Status ValidateConfig(const HandshakePattern& pattern, const HandshakeConfig& config) {
  const bool initiator = config.role == Role::kInitiator;
  const std::vector<Token>& local_pre = initiator ? pattern.initiator_pre : pattern.responder_pre;
  const std::vector<Token>& remote_pre = initiator ? pattern.responder_pre : pattern.initiator_pre;
  auto has = [](const std::vector<Token>& tokens, Token t) {
    for (Token x : tokens) {
      if (x == t) return true;
    }
    return false;
  };
  const std::string who = std::string(RoleName(initiator)) + " of " + pattern.name;
  if (has(local_pre, Token::kS) && !config.local_static) {
    return Status::InvalidArgument(who + " needs a local static key (pre-message)");
  }
  if (has(local_pre, Token::kE) && !config.local_ephemeral) {
    return Status::InvalidArgument(who + " needs a local ephemeral key (pre-message)");
  }
  if (has(remote_pre, Token::kS) != config.remote_static.has_value()) {
    return Status::InvalidArgument(who + (config.remote_static
                                              ? " learns the remote static key in-band; do not "
                                                "pass one (check remote_static() afterwards)"
                                              : " needs the remote static key (pre-message)"));
  }
  if (has(remote_pre, Token::kE) != config.remote_ephemeral.has_value()) {
    return Status::InvalidArgument(who + (config.remote_ephemeral
                                              ? " does not take a remote ephemeral key"
                                              : " needs the remote ephemeral key (pre-message)"));
  }
  if (static_cast<int>(config.psks.size()) != pattern.PskCount()) {
    return Status::InvalidArgument(who + " needs " + std::to_string(pattern.PskCount()) +
                                   " PSK(s), got " + std::to_string(config.psks.size()));
  }
  bool have_s = config.local_static.has_value();
  bool have_e = has(local_pre, Token::kE);
  bool have_rs = config.remote_static.has_value();
  bool have_re = config.remote_ephemeral.has_value();
  for (const MessagePattern& message : pattern.messages) {
    const bool mine = message.from_initiator == initiator;
    for (Token token : message.tokens) {
      bool ok = true;
      switch (token) {
        case Token::kE:
          (mine ? have_e : have_re) = true;
          break;
        case Token::kS:
          if (mine)
            ok = have_s;
          else
            have_rs = true;
          break;
        case Token::kEE:
          ok = have_e && have_re;
          break;
        case Token::kES:
          ok = initiator ? (have_e && have_rs) : (have_s && have_re);
          break;
        case Token::kSE:
          ok = initiator ? (have_s && have_re) : (have_e && have_rs);
          break;
        case Token::kSS:
          ok = have_s && have_rs;
          break;
        case Token::kPsk:
          break;
      }
      if (!ok) {
        return Status::InvalidArgument(who + ": token '" + TokenName(token) +
                                       "' needs a key that is not available (local static key "
                                       "missing?)");
      }
    }
  }
  return Status::Ok();
}

// Exact size of the message `tokens` produce with a payload of
// `payload_size` bytes, given whether a key is set on entry.
size_t PredictMessageSize(const std::vector<Token>& tokens, bool has_key, bool psk_mode,
                          size_t payload_size) {
  size_t size = 0;
  for (Token token : tokens) {
    switch (token) {
      case Token::kE:
        size += kDhLen;
        if (psk_mode) has_key = true;
        break;
      case Token::kS:
        size += kDhLen + (has_key ? kTagLen : 0);
        break;
      default:
        has_key = true;
        break;
    }
  }
  return size + payload_size + (has_key ? kTagLen : 0);
}

}  // namespace

Result<HandshakeState> HandshakeState::Create(HandshakeConfig config) {
  Result<HandshakePattern> pattern = ParseProtocolName(config.protocol_name);
  if (!pattern.ok()) return pattern.status();
  DPNODE_RETURN_IF_ERROR(ValidateConfig(*pattern, config));
  DPNODE_RETURN_IF_ERROR(EnsureSodiumInitialized());
  return HandshakeState(std::move(config), std::move(pattern).value());
}

HandshakeState::HandshakeState(HandshakeConfig config, HandshakePattern pattern)
    : pattern_(std::move(pattern)),
      role_(config.role),
      symmetric_(config.protocol_name),
      local_static_(std::move(config.local_static)),
      local_ephemeral_(std::move(config.local_ephemeral)),
      remote_static_(config.remote_static),
      remote_ephemeral_(config.remote_ephemeral),
      psks_(std::move(config.psks)) {
  symmetric_.MixHash(config.prologue);
  const bool psk_mode = pattern_.IsPskMode();
  // Pre-messages are hashed initiator's first, whichever side we are.
  for (bool initiator_side : {true, false}) {
    const bool local = initiator_side == IsInitiator();
    for (Token token : initiator_side ? pattern_.initiator_pre : pattern_.responder_pre) {
      const PublicKey& key = token == Token::kS
                                 ? (local ? local_static_->public_key : *remote_static_)
                                 : (local ? local_ephemeral_->public_key : *remote_ephemeral_);
      symmetric_.MixHash(key);
      if (token == Token::kE && psk_mode) symmetric_.MixKey(key);
    }
  }
}

bool HandshakeState::IsMyTurn() const {
  return !complete_ && !failed_ &&
         pattern_.messages[message_index_].from_initiator == IsInitiator();
}

Result<Bytes> HandshakeState::Fail(Status status) {
  failed_ = true;
  local_ephemeral_.reset();
  return status;
}

Status HandshakeState::MixDh(const std::optional<KeyPair>& local,
                             const std::optional<PublicKey>& remote) {
  // ValidateConfig guarantees both exist by the time a DH token runs.
  DPNODE_CHECK(local.has_value() && remote.has_value(), "DH key missing despite validation");
  SecretArray<kDhLen> shared;
  DPNODE_RETURN_IF_ERROR(X25519(local->private_key, *remote, &shared));
  symmetric_.MixKey(shared);
  return Status::Ok();
}

Status HandshakeState::ProcessDhOrPsk(Token token) {
  switch (token) {
    case Token::kEE:
      return MixDh(local_ephemeral_, remote_ephemeral_);
    case Token::kES:
      return IsInitiator() ? MixDh(local_ephemeral_, remote_static_)
                           : MixDh(local_static_, remote_ephemeral_);
    case Token::kSE:
      return IsInitiator() ? MixDh(local_static_, remote_ephemeral_)
                           : MixDh(local_ephemeral_, remote_static_);
    case Token::kSS:
      return MixDh(local_static_, remote_static_);
    case Token::kPsk:
      DPNODE_CHECK(next_psk_ < psks_.size(), "psk %zu of %zu", next_psk_, psks_.size());
      symmetric_.MixKeyAndHash(psks_[next_psk_++]);
      return Status::Ok();
    case Token::kE:
    case Token::kS:
      break;
  }
  DPNODE_CHECK(false, "token %s is not a DH or psk token", TokenName(token));
  return Status::Internal("unreachable");
}

void HandshakeState::FinishMessage() {
  ++message_index_;
  if (message_index_ < pattern_.messages.size()) return;
  complete_ = true;
  auto [initiator_to_responder, responder_to_initiator] = symmetric_.Split();
  TransportCiphers ciphers;
  if (IsInitiator()) {
    ciphers.send = std::move(initiator_to_responder);
    if (!pattern_.one_way) ciphers.receive = std::move(responder_to_initiator);
  } else {
    ciphers.receive = std::move(initiator_to_responder);
    if (!pattern_.one_way) ciphers.send = std::move(responder_to_initiator);
  }
  transport_ = std::move(ciphers);
  local_ephemeral_.reset();  // no further use; wipes the private key now
}

Result<Bytes> HandshakeState::WriteMessage(ByteView payload) {
  if (failed_) return Status::FailedPrecondition("handshake has already failed");
  if (complete_) return Status::FailedPrecondition("handshake is already complete");
  if (!IsMyTurn()) {
    return Status::FailedPrecondition(
        "out of order: message " + std::to_string(message_index_ + 1) + " is the peer's to write");
  }
  const MessagePattern& message = pattern_.messages[message_index_];
  const size_t size =
      PredictMessageSize(message.tokens, symmetric_.HasKey(), pattern_.IsPskMode(), payload.size());
  if (size > kMaxMessageLen) {
    return Status::InvalidArgument("handshake message would be " + std::to_string(size) +
                                   " bytes, over the Noise limit of 65535");
  }
  Bytes out;
  out.reserve(size);
  for (Token token : message.tokens) {
    if (token == Token::kE) {
      if (!local_ephemeral_) {
        Result<KeyPair> generated = KeyPair::Generate();
        if (!generated.ok()) return Fail(generated.status());
        local_ephemeral_ = std::move(generated).value();
      }
      const PublicKey& e = local_ephemeral_->public_key;
      out.insert(out.end(), e.begin(), e.end());
      symmetric_.MixHash(e);
      if (pattern_.IsPskMode()) symmetric_.MixKey(e);
    } else if (token == Token::kS) {
      Result<Bytes> encrypted = symmetric_.EncryptAndHash(local_static_->public_key);
      if (!encrypted.ok()) return Fail(encrypted.status());
      out.insert(out.end(), encrypted->begin(), encrypted->end());
    } else {
      Status status = ProcessDhOrPsk(token);
      if (!status.ok()) return Fail(status);
    }
  }
  Result<Bytes> encrypted = symmetric_.EncryptAndHash(payload);
  if (!encrypted.ok()) return Fail(encrypted.status());
  out.insert(out.end(), encrypted->begin(), encrypted->end());
  DPNODE_CHECK(out.size() == size, "predicted %zu bytes, wrote %zu", size, out.size());
  FinishMessage();
  return out;
}

Result<Bytes> HandshakeState::ReadMessage(ByteView message) {
  if (failed_) return Status::FailedPrecondition("handshake has already failed");
  if (complete_) return Status::FailedPrecondition("handshake is already complete");
  if (IsMyTurn()) {
    return Status::FailedPrecondition("out of order: message " +
                                      std::to_string(message_index_ + 1) + " is ours to write");
  }
  if (message.size() > kMaxMessageLen) {
    return Status::InvalidArgument("handshake message of " + std::to_string(message.size()) +
                                   " bytes is over the Noise limit of 65535");
  }
  size_t offset = 0;
  auto take = [&](size_t n, const char* what) -> Result<ByteView> {
    if (message.size() - offset < n) {
      return Status::Corruption(std::string("handshake message too short for ") + what);
    }
    ByteView part = message.Sub(offset, n);
    offset += n;
    return part;
  };
  for (Token token : pattern_.messages[message_index_].tokens) {
    if (token == Token::kE) {
      Result<ByteView> e = take(kDhLen, "an ephemeral key");
      if (!e.ok()) return Fail(e.status());
      PublicKey re{};
      std::copy(e->begin(), e->end(), re.begin());
      remote_ephemeral_ = re;
      symmetric_.MixHash(re);
      if (pattern_.IsPskMode()) symmetric_.MixKey(re);
    } else if (token == Token::kS) {
      Result<ByteView> s = take(kDhLen + (symmetric_.HasKey() ? kTagLen : 0), "a static key");
      if (!s.ok()) return Fail(s.status());
      Result<Bytes> rs = symmetric_.DecryptAndHash(*s);
      if (!rs.ok()) return Fail(rs.status().WithContext("remote static key"));
      PublicKey key{};
      std::copy(rs->begin(), rs->end(), key.begin());
      remote_static_ = key;
    } else {
      Status status = ProcessDhOrPsk(token);
      if (!status.ok()) return Fail(status);
    }
  }
  Result<Bytes> payload = symmetric_.DecryptAndHash(message.Sub(offset, message.size() - offset));
  if (!payload.ok()) return Fail(payload.status().WithContext("handshake payload"));
  FinishMessage();
  return payload;
}

Result<TransportCiphers> HandshakeState::Split() {
  if (!complete_) return Status::FailedPrecondition("Split() before the handshake completed");
  if (!transport_) return Status::FailedPrecondition("Split() already handed out the ciphers");
  TransportCiphers ciphers = std::move(*transport_);
  transport_.reset();
  return ciphers;
}

}  // namespace dpnode::crypto::noise
