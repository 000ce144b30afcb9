// The secure channel: XX handshake with identity proofs, frames and records.
#include "crypto/secure_channel.h"

#include <algorithm>
#include <cstring>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace dpnode::crypto {
namespace {

constexpr std::string_view kPrologueLabel = "dpnode-channel";
constexpr std::string_view kProofLabel = "dpnode-channel identity proof v1";
constexpr size_t kMaxConsortiumIdLen = 255;
constexpr char kInitiatorTag = 'I';
constexpr char kResponderTag = 'R';
// XX message sizes with our payloads: e; e + enc(s) + enc(proof); enc(s) + enc(proof).
constexpr size_t kHandshake1Len = noise::kDhLen;
constexpr size_t kHandshake2Len =
    noise::kDhLen + (noise::kDhLen + noise::kTagLen) + (kIdentityProofLen + noise::kTagLen);
constexpr size_t kHandshake3Len =
    (noise::kDhLen + noise::kTagLen) + (kIdentityProofLen + noise::kTagLen);
// The smallest transport frame: a tag around a 1-byte record header.
constexpr size_t kMinTransportFrame = noise::kTagLen + 1;
constexpr size_t kFirstChunkMax = kMaxRecordPlaintext - kFirstRecordHeaderLen;  // 65510
constexpr size_t kNextChunkMax = kMaxRecordPlaintext - 1;                       // 65518

const char* kHandshakeFailed =
    "handshake failed: wrong consortium id or protocol version, or tampered";

void PutBigEndian(uint64_t v, int bytes, Bytes* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t GetBigEndian64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// A message buffer of many megabytes is freshly mapped memory: filling it
// takes a page fault per 4 KiB page, which costs about as much as the copy
// into it. Asking for transparent huge pages (Linux, where they are enabled
// "madvise") makes that one fault per 2 MiB. Only a hint: no effect on
// contents, and ignored where unsupported.
void AdviseLargeBuffer(uint8_t* data, size_t size) {
#if defined(MADV_HUGEPAGE)
  constexpr size_t kHugePage = size_t{2} << 20;
  if (size < 2 * kHugePage) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) & ~(kHugePage - 1);
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)size;
#endif
}

}  // namespace

Bytes ChannelPrologue(uint32_t protocol_version, std::string_view consortium_id) {
  Bytes p(kPrologueLabel.begin(), kPrologueLabel.end());
  PutBigEndian(protocol_version, 4, &p);
  p.push_back(static_cast<uint8_t>(consortium_id.size()));
  p.insert(p.end(), consortium_id.begin(), consortium_id.end());
  return p;
}

Bytes IdentityProofMessage(char role, const noise::PublicKey& static_key, ByteView handshake_hash) {
  Bytes m(kProofLabel.begin(), kProofLabel.end());
  m.push_back(static_cast<uint8_t>(role));
  m.insert(m.end(), static_key.begin(), static_key.end());
  m.insert(m.end(), handshake_hash.begin(), handshake_hash.end());
  return m;
}

uint64_t SecureChannel::EncodedSize(uint64_t size) {
  const uint64_t first = std::min<uint64_t>(size, kFirstChunkMax);
  const uint64_t rest = size - first;
  const uint64_t next_records = (rest + kNextChunkMax - 1) / kNextChunkMax;
  return (kFrameHeaderLen + noise::kTagLen + kFirstRecordHeaderLen + first) +
         next_records * (kFrameHeaderLen + noise::kTagLen + 1) + rest;
}

Result<SecureChannel> SecureChannel::Create(ChannelRole role, const SiteIdentity& identity,
                                            PinnedKeyCheck is_pinned,
                                            const SecureChannelOptions& options, SteadyTime now,
                                            std::optional<noise::KeyPair> static_key) {
  if (options.consortium_id.empty() || options.consortium_id.size() > kMaxConsortiumIdLen) {
    return Status::InvalidArgument("consortium id must be 1-255 bytes");
  }
  if (!is_pinned) return Status::InvalidArgument("a pinned-key check is required");
  if (options.rekey_after_records == 0 || options.rekey_after_bytes == 0) {
    return Status::InvalidArgument("rekey budgets must be positive");
  }
  if (options.encrypt_ahead_bytes == 0) {
    return Status::InvalidArgument("encrypt_ahead_bytes must be positive");
  }
  if (options.handshake_timeout.count() <= 0) {
    return Status::InvalidArgument("handshake timeout must be positive");
  }
  if (options.max_send_buffer_bytes < EncodedSize(options.max_message_bytes)) {
    return Status::InvalidArgument("max_send_buffer_bytes (" +
                                   std::to_string(options.max_send_buffer_bytes) +
                                   ") cannot hold one message of max_message_bytes (" +
                                   std::to_string(options.max_message_bytes) + ")");
  }
  if (!static_key) {
    Result<noise::KeyPair> generated = noise::KeyPair::Generate();
    if (!generated.ok()) return generated.status();
    static_key = std::move(*generated);
  }
  noise::HandshakeConfig config;
  config.protocol_name = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
  config.role = role == ChannelRole::kInitiator ? noise::Role::kInitiator : noise::Role::kResponder;
  config.prologue = ChannelPrologue(options.protocol_version, options.consortium_id);
  config.local_static = *static_key;
  Result<noise::HandshakeState> hs = noise::HandshakeState::Create(std::move(config));
  if (!hs.ok()) return hs.status();
  SecureChannel channel(role, identity, std::move(is_pinned), options, now, std::move(*hs),
                        std::move(*static_key));
  if (role == ChannelRole::kInitiator) {
    Result<Bytes> m1 = channel.handshake_->WriteMessage(ByteView());
    if (!m1.ok()) return m1.status();
    channel.AppendFrame(*m1);
  }
  return channel;
}

SecureChannel::SecureChannel(ChannelRole role, const SiteIdentity& identity,
                             PinnedKeyCheck is_pinned, const SecureChannelOptions& options,
                             SteadyTime now, noise::HandshakeState hs, noise::KeyPair static_key)
    : role_(role),
      identity_(identity),
      is_pinned_(std::move(is_pinned)),
      options_(options),
      deadline_(now + options.handshake_timeout),
      static_key_(std::move(static_key)),
      handshake_(std::move(hs)) {}

Status SecureChannel::Fail(Status status) {
  if (state_ == State::kFailed) return status_;
  state_ = State::kFailed;
  status_ = std::move(status);
  handshake_.reset();
  send_cipher_.reset();
  receive_cipher_.reset();
  out_.reset();
  out_capacity_ = 0;
  out_begin_ = 0;
  out_end_ = 0;
  pending_.clear();
  pending_encoded_bytes_ = 0;
  received_.clear();
  assembling_.clear();
  assembling_total_.reset();
  frame_.reset();
  frame_have_ = 0;
  return status_;
}

// ---------------------------------------------------------------- input

Status SecureChannel::ReceivedBytes(ByteView bytes) {
  size_t pos = 0;
  while (state_ != State::kFailed && pos < bytes.size()) {
    if (header_have_ < kFrameHeaderLen) {
      header_[header_have_++] = bytes[pos++];
      if (header_have_ < kFrameHeaderLen) continue;
      frame_len_ = (size_t{header_[0]} << 8) | header_[1];
      // Sizes are checked before a byte of the body is buffered.
      const size_t expected = ExpectedHandshakeFrameLen();
      if (expected != 0 && frame_len_ != expected) {
        return Fail(Status::Corruption(std::string(kHandshakeFailed) + " (handshake message of " +
                                       std::to_string(frame_len_) + " bytes, expected " +
                                       std::to_string(expected) + ")"));
      }
      if (expected == 0 && frame_len_ < kMinTransportFrame) {
        return Fail(Status::Corruption("frame of " + std::to_string(frame_len_) +
                                       " bytes is too short to be a record"));
      }
      frame_have_ = 0;
      if (pos == bytes.size()) break;
    }
    if (!frame_) frame_ = std::make_unique<uint8_t[]>(noise::kMaxMessageLen);
    if (frame_have_ == 0 && state_ == State::kEstablished && bytes.size() - pos >= frame_len_) {
      // The whole frame is in the input: decrypt it straight out of there
      // rather than buffering it first.
      const ByteView frame = bytes.Sub(pos, frame_len_);
      pos += frame_len_;
      header_have_ = 0;
      const Status s = ProcessTransportFrame(frame, frame_.get());
      if (!s.ok()) return Fail(s);
      continue;
    }
    const size_t take = std::min(frame_len_ - frame_have_, bytes.size() - pos);
    std::memcpy(frame_.get() + frame_have_, bytes.data() + pos, take);
    frame_have_ += take;
    pos += take;
    if (frame_have_ == frame_len_) {
      header_have_ = 0;
      frame_have_ = 0;
      const ByteView frame(frame_.get(), frame_len_);
      const Status s = state_ == State::kHandshake ? ProcessHandshakeFrame(frame)
                                                   : ProcessTransportFrame(frame, frame_.get());
      if (!s.ok()) return Fail(s);
    }
  }
  return status_;
}

size_t SecureChannel::ExpectedHandshakeFrameLen() const {
  if (state_ != State::kHandshake) return 0;
  // The next handshake message we will read: the responder reads 1 and 3,
  // the initiator reads 2.
  const size_t index = handshake_->message_index();
  if (role_ == ChannelRole::kResponder) return index == 0 ? kHandshake1Len : kHandshake3Len;
  return kHandshake2Len;
}

Status SecureChannel::ProcessTransportFrame(ByteView frame, uint8_t* plaintext) {
  const Status s = receive_cipher_->DecryptInto(ByteView(), frame, plaintext);
  if (!s.ok()) {
    if (s.code() == StatusCode::kCorruption) {
      return Status::Corruption(
          "received frame failed authentication (tampered, replayed, reordered or forged)");
    }
    return s;
  }
  return ProcessRecord(ByteView(plaintext, frame.size() - noise::kTagLen));
}

Status SecureChannel::ProcessHandshakeFrame(ByteView frame) {
  noise::HandshakeState& hs = *handshake_;
  if (hs.IsMyTurn()) {
    return Status::Corruption("received a handshake message while it is our turn to send");
  }
  const noise::HashOutput hash_before = hs.handshake_hash();
  Result<Bytes> payload = hs.ReadMessage(frame);
  if (!payload.ok()) {
    return Status::Corruption(std::string(kHandshakeFailed) + " (" + payload.status().message() +
                              ")");
  }
  if (role_ == ChannelRole::kResponder && hs.message_index() == 1) {
    if (!payload->empty()) return Status::Corruption("first handshake message carries a payload");
    const noise::HashOutput hash = hs.handshake_hash();
    Result<Bytes> m2 = hs.WriteMessage(MakeIdentityProof(kResponderTag, hash));
    if (!m2.ok()) return m2.status();
    AppendFrame(*m2);
    return Status::Ok();
  }
  if (!hs.remote_static()) return Status::Internal("XX handshake without a remote static key");
  const char peer_tag = role_ == ChannelRole::kInitiator ? kResponderTag : kInitiatorTag;
  DPNODE_RETURN_IF_ERROR(CheckIdentityProof(*payload, peer_tag, *hs.remote_static(), hash_before));
  if (role_ == ChannelRole::kInitiator) {
    const noise::HashOutput hash = hs.handshake_hash();
    Result<Bytes> m3 = hs.WriteMessage(MakeIdentityProof(kInitiatorTag, hash));
    if (!m3.ok()) return m3.status();
    AppendFrame(*m3);
  }
  return Establish();
}

Status SecureChannel::CheckIdentityProof(ByteView payload, char peer_role,
                                         const noise::PublicKey& peer_static,
                                         const noise::HashOutput& hash_before) {
  if (payload.size() != kIdentityProofLen) {
    return Status::Corruption("handshake failed: identity proof of " +
                              std::to_string(payload.size()) + " bytes, expected " +
                              std::to_string(kIdentityProofLen));
  }
  Ed25519PublicKey key{};
  Ed25519Signature sig{};
  std::copy(payload.begin(), payload.begin() + key.size(), key.begin());
  std::copy(payload.begin() + key.size(), payload.end(), sig.begin());
  if (!VerifySignature(key, IdentityProofMessage(peer_role, peer_static, hash_before.view()),
                       sig)) {
    return Status::Corruption("handshake failed: the peer's identity signature does not verify");
  }
  if (!is_pinned_(key)) {
    return Status::FailedPrecondition("refused peer " + PublicKeyToText(key) + " (fingerprint " +
                                      Fingerprint(key) + "): key is not pinned in peers.txt");
  }
  peer_identity_ = key;
  return Status::Ok();
}

Bytes SecureChannel::MakeIdentityProof(char my_role, const noise::HashOutput& hash_before) const {
  const Ed25519Signature sig =
      identity_.Sign(IdentityProofMessage(my_role, static_key_.public_key, hash_before.view()));
  Bytes proof(identity_.public_key().begin(), identity_.public_key().end());
  proof.insert(proof.end(), sig.begin(), sig.end());
  return proof;
}

Status SecureChannel::Establish() {
  noise::HandshakeState& hs = *handshake_;
  if (!hs.IsComplete()) return Status::Internal("handshake not complete after its last message");
  session_hash_ = hs.handshake_hash().view().ToBytes();
  Result<noise::TransportCiphers> ciphers = hs.Split();
  if (!ciphers.ok()) return ciphers.status();
  if (!ciphers->send || !ciphers->receive)
    return Status::Internal("XX split without both directions");
  send_cipher_ = std::move(ciphers->send);
  receive_cipher_ = std::move(ciphers->receive);
  handshake_.reset();
  state_ = State::kEstablished;
  // Messages sent during the handshake start going out now.
  return EncryptAhead();
}

Status SecureChannel::ProcessRecord(ByteView plaintext) {
  const uint8_t flags = plaintext[0];
  if ((flags & ~(kRecordFirst | kRecordRekey)) != 0) {
    return Status::Corruption("record with unknown flags");
  }
  ByteView chunk;
  if (flags & kRecordFirst) {
    if (assembling_total_)
      return Status::Corruption("record starts a message before the previous one ended");
    if (plaintext.size() < kFirstRecordHeaderLen)
      return Status::Corruption("first record too short");
    const uint64_t total = GetBigEndian64(plaintext.data() + 1);
    // The cap is checked before anything is sized by `total`.
    if (total > options_.max_message_bytes) {
      return Status::Corruption("peer declared a message of " + std::to_string(total) +
                                " bytes, over the cap of " +
                                std::to_string(options_.max_message_bytes));
    }
    chunk = plaintext.Sub(kFirstRecordHeaderLen, plaintext.size() - kFirstRecordHeaderLen);
    if (chunk.size() > total)
      return Status::Corruption("record overruns its message's declared size");
    if (chunk.empty() && total != 0) return Status::Corruption("empty first record");
    assembling_total_ = total;
    assembling_.clear();
    assembling_.reserve(static_cast<size_t>(total));
    AdviseLargeBuffer(assembling_.data(), static_cast<size_t>(total));
  } else {
    if (!assembling_total_) return Status::Corruption("continuation record without a message");
    chunk = plaintext.Sub(1, plaintext.size() - 1);
    if (chunk.empty()) return Status::Corruption("empty continuation record");
    if (chunk.size() > *assembling_total_ - assembling_.size()) {
      return Status::Corruption("record overruns its message's declared size");
    }
  }
  assembling_.insert(assembling_.end(), chunk.begin(), chunk.end());
  if (assembling_.size() == *assembling_total_) {
    received_.push_back(std::move(assembling_));
    assembling_ = Bytes();
    assembling_total_.reset();
  }
  if (flags & kRecordRekey) {
    DPNODE_RETURN_IF_ERROR(receive_cipher_->Rekey());
    ++rekeys_received_;
  }
  return Status::Ok();
}

std::optional<Bytes> SecureChannel::NextMessage() {
  if (received_.empty()) return std::nullopt;
  Bytes m = std::move(received_.front());
  received_.pop_front();
  return m;
}

Status SecureChannel::EndOfStream() {
  if (state_ == State::kFailed) return status_;
  if (header_have_ > 0) return Fail(Status::Corruption("stream ended inside a frame"));
  if (assembling_total_)
    return Fail(Status::Corruption("stream ended inside a multi-record message"));
  return status_;
}

Status SecureChannel::CheckDeadline(SteadyTime now) {
  if (state_ == State::kHandshake && now >= deadline_) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.handshake_timeout);
    return Fail(
        Status::Unavailable("handshake not complete within " + std::to_string(ms.count()) + " ms"));
  }
  return status_;
}

// ---------------------------------------------------------------- output

uint8_t* SecureChannel::ReserveOutput(size_t n) {
  if (out_begin_ == out_end_) out_begin_ = out_end_ = 0;
  if (out_capacity_ - out_end_ < n) {
    const size_t unsent = out_end_ - out_begin_;
    if (unsent + n <= out_capacity_) {
      // Reached only when appending behind unsent output: move it down
      // rather than grow (it is at most about encrypt_ahead_bytes).
      std::memmove(out_.get(), out_.get() + out_begin_, unsent);
    } else {
      const size_t capacity = std::max(unsent + n, 2 * out_capacity_);
      std::unique_ptr<uint8_t[]> grown(new uint8_t[capacity]);  // not zero-filled
      if (unsent > 0) std::memcpy(grown.get(), out_.get() + out_begin_, unsent);
      out_ = std::move(grown);
      out_capacity_ = capacity;
    }
    out_begin_ = 0;
    out_end_ = unsent;
  }
  return out_.get() + out_end_;
}

void SecureChannel::AppendFrame(ByteView noise_message) {
  DPNODE_CHECK(noise_message.size() <= noise::kMaxMessageLen, "frame of %zu bytes",
               noise_message.size());
  uint8_t* p = ReserveOutput(kFrameHeaderLen + noise_message.size());
  p[0] = static_cast<uint8_t>(noise_message.size() >> 8);
  p[1] = static_cast<uint8_t>(noise_message.size());
  if (!noise_message.empty()) {
    std::memcpy(p + kFrameHeaderLen, noise_message.data(), noise_message.size());
  }
  out_end_ += kFrameHeaderLen + noise_message.size();
}

Status SecureChannel::EncryptRecord(PendingMessage& m) {
  DPNODE_CHECK(send_cipher_ && send_cipher_->HasKey(), "encrypting without a transport key");
  const bool first = !m.started;
  const size_t header = first ? kFirstRecordHeaderLen : 1;
  const size_t left = m.data.size() - m.offset;
  const size_t chunk = std::min(left, first ? kFirstChunkMax : kNextChunkMax);
  const size_t record_len = header + chunk;
  const size_t frame_len = record_len + noise::kTagLen;
  const uint64_t frame_bytes = kFrameHeaderLen + frame_len;
  uint8_t* p = ReserveOutput(static_cast<size_t>(frame_bytes));
  p[0] = static_cast<uint8_t>(frame_len >> 8);
  p[1] = static_cast<uint8_t>(frame_len);
  uint8_t* record = p + kFrameHeaderLen;
  record[0] = first ? kRecordFirst : 0;
  if (first) {
    const uint64_t total = m.data.size();
    for (int i = 0; i < 8; ++i) record[1 + i] = static_cast<uint8_t>(total >> (8 * (7 - i)));
  }
  // The one copy of the plaintext; the AEAD then encrypts it where it lies.
  if (chunk > 0) std::memcpy(record + header, m.data.data() + m.offset, chunk);
  const bool rekey = send_records_since_rekey_ + 1 >= options_.rekey_after_records ||
                     send_bytes_since_rekey_ + frame_bytes >= options_.rekey_after_bytes;
  if (rekey) record[0] |= kRecordRekey;
  DPNODE_RETURN_IF_ERROR(send_cipher_->EncryptInPlace(ByteView(), record, record_len));
  out_end_ += static_cast<size_t>(frame_bytes);
  if (rekey) {
    DPNODE_RETURN_IF_ERROR(send_cipher_->Rekey());
    ++rekeys_sent_;
    send_records_since_rekey_ = 0;
    send_bytes_since_rekey_ = 0;
  } else {
    ++send_records_since_rekey_;
    send_bytes_since_rekey_ += frame_bytes;
  }
  m.offset += chunk;
  m.started = true;
  DPNODE_CHECK(m.encoded_left >= frame_bytes, "encoded size bookkeeping");
  m.encoded_left -= frame_bytes;
  pending_encoded_bytes_ -= frame_bytes;
  return Status::Ok();
}

Status SecureChannel::EncryptAhead() {
  while (state_ == State::kEstablished && !pending_.empty() &&
         out_end_ - out_begin_ < options_.encrypt_ahead_bytes) {
    PendingMessage& m = pending_.front();
    DPNODE_RETURN_IF_ERROR(EncryptRecord(m));
    if (m.offset == m.data.size()) pending_.pop_front();
  }
  return Status::Ok();
}

Status SecureChannel::Send(ByteView message) { return SendImpl(message, nullptr); }

Status SecureChannel::Send(std::shared_ptr<const Bytes> message) {
  DPNODE_CHECK(message != nullptr, "Send of a null message");
  const ByteView view(*message);
  return SendImpl(view, std::move(message));
}

Status SecureChannel::SendImpl(ByteView message, std::shared_ptr<const Bytes> owner) {
  if (state_ == State::kFailed) return status_;
  if (message.size() > options_.max_message_bytes) {
    return Status::InvalidArgument("message of " + std::to_string(message.size()) +
                                   " bytes is over the cap of " +
                                   std::to_string(options_.max_message_bytes));
  }
  const uint64_t encoded = EncodedSize(message.size());
  if (pending_send_bytes() + encoded > options_.max_send_buffer_bytes) {
    return Status::Unavailable("send buffer full (" + std::to_string(pending_send_bytes()) +
                               " bytes pending); send what is buffered first");
  }
  PendingMessage m;
  m.data = message;
  m.encoded_left = encoded;
  pending_encoded_bytes_ += encoded;
  if (state_ == State::kEstablished && pending_.empty()) {
    // Nothing ahead of it: encrypt straight from the caller's bytes while
    // the window has room (all of it, for a message that fits).
    while (!(m.started && m.offset == m.data.size()) &&
           out_end_ - out_begin_ < options_.encrypt_ahead_bytes) {
      const Status s = EncryptRecord(m);
      if (!s.ok()) return Fail(s);
    }
    if (m.started && m.offset == m.data.size()) return Status::Ok();
  }
  if (!owner) {
    // Keep a copy of what is not encrypted yet; the caller's view ends here.
    auto rest = std::make_shared<const Bytes>(message.begin() + m.offset, message.end());
    m.data = ByteView(*rest);
    m.offset = 0;
    owner = std::move(rest);
  }
  m.owner = std::move(owner);
  pending_.push_back(std::move(m));
  return Status::Ok();
}

ByteView SecureChannel::GetBytesToSend() const {
  if (out_begin_ == out_end_) return ByteView();
  return ByteView(out_.get() + out_begin_, out_end_ - out_begin_);
}

void SecureChannel::MarkBytesSent(size_t n) {
  DPNODE_CHECK(n <= out_end_ - out_begin_, "MarkBytesSent(%zu) with %zu pending", n,
               out_end_ - out_begin_);
  out_begin_ += n;
  if (out_begin_ == out_end_) {
    out_begin_ = 0;
    out_end_ = 0;
    // Refill only once the written output is used up, so the buffer is
    // reused from its start and never shifted.
    const Status s = EncryptAhead();
    if (!s.ok()) (void)Fail(s);
  }
}

size_t SecureChannel::pending_send_bytes() const {
  return (out_end_ - out_begin_) + static_cast<size_t>(pending_encoded_bytes_);
}

}  // namespace dpnode::crypto
