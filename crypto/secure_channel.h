// The secure channel between two sites: a sans-I/O object per connection that
// runs Noise_XX_25519_ChaChaPoly_BLAKE2b, proves and checks Ed25519 site
// identities, and then carries application messages of any size up to a cap.
// Bytes in, bytes out: it never touches sockets, clocks, threads or globals;
// the caller moves bytes and passes the time in. Shaped like Bitcoin Core's
// Transport:
//
//   auto ch = SecureChannel::Create(ChannelRole::kInitiator, identity, pinned, options, now);
//   on bytes from the socket:  ch->ReceivedBytes(bytes); while (auto m = ch->NextMessage()) ...
//   to write:                  ByteView out = ch->GetBytesToSend(); n = write(out);
//   ch->MarkBytesSent(n); to send:                   ch->Send(message)        (queued until the
//   handshake completes) on a timer:                ch->CheckDeadline(now)   (handshake timeout) on
//   EOF:                    ch->EndOfStream()
//
// Wire format (docs/noise.md, "Secure channel"):
//   frame   = u16 big-endian length || one Noise message (1..65535 bytes)
//   prologue = "dpnode-channel" || u32be(protocol_version) || u8(len(consortium_id)) ||
//   consortium_id XX message 1 (-> e)             payload empty XX message 2 (<- e ee s es) payload
//   = responder's identity proof XX message 3 (-> s se)           payload = initiator's identity
//   proof identity proof = Ed25519 public key (32) || Ed25519 signature (64) over
//     IdentityProofMessage(role, sender's Noise static public key, h) where h
//     is the handshake hash just before the message carrying the proof.
//   record (the plaintext of each transport message)
//     = flags (1 byte: 0x01 first record of a message, 0x02 rekey after this
//       record) || [u64be total message size, first record only] || chunk
//
// Refusals. Every one of these closes the session: the object enters a failed
// state, drops everything queued in both directions, and every later call
// returns the same Status (HasFailed(), status()):
//   - a handshake message of the wrong size, or one that fails to decrypt
//     (kCorruption: "handshake failed: wrong consortium id or protocol
//     version, or tampered"; the three cannot be told apart, by design);
//   - a bad identity proof (kCorruption) or an identity that is not pinned
//     (kFailedPrecondition), checked before any application data is accepted
//     or sent;
//   - a transport frame that fails authentication: tampered, replayed,
//     reordered or forged (kCorruption), or nonce exhaustion (kOutOfRange);
//   - a malformed record, or a declared message size over
//     options.max_message_bytes (kCorruption), refused before any allocation;
//   - no completed handshake by the deadline (kUnavailable, from CheckDeadline);
//   - the stream ending inside a frame or a message (kCorruption, EndOfStream).
// Not session-fatal: Send of a message over max_message_bytes
// (kInvalidArgument) or when the send buffer is full (kUnavailable: back off,
// drain GetBytesToSend, retry).
//
// Memory: one partial frame (<= 65537 bytes) is buffered on input, plus the
// message being assembled (<= max_message_bytes) and complete messages not
// yet taken with NextMessage (the caller bounds these by pulling messages
// before feeding more bytes). Output is bounded by max_send_buffer_bytes.
// A message buffer of 4 MiB or more is advised for transparent huge pages
// (Linux madvise, a hint only): fewer page faults while it fills, and
// memory committed in 2 MiB steps, still within the declared, capped size.
//
// Encryption is incremental: Send encrypts records only until about
// options.encrypt_ahead_bytes of ciphertext wait to be written; the rest of
// the message is kept as plaintext (copied, or shared with the caller by the
// shared_ptr overload of Send) and encrypted as MarkBytesSent drains the
// output. So GetBytesToSend() may hold only a prefix of what is pending: the
// caller writes, calls MarkBytesSent, and asks again until it is empty. This
// lets a 40 MB message go out while it is still being encrypted (the peer
// decrypts record k while record k+1 is encrypted) and keeps the ciphertext
// buffer small; records, nonces and rekeys are exactly those of encrypting
// the whole message at once.
// Not thread-safe.
#ifndef DPNODE_CRYPTO_SECURE_CHANNEL_H_
#define DPNODE_CRYPTO_SECURE_CHANNEL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/identity.h"
#include "crypto/noise_cipher_state.h"
#include "crypto/noise_handshake.h"
#include "crypto/noise_primitives.h"

namespace dpnode::crypto {

// Time as the caller's steady clock reads it, measured from any origin the
// caller keeps fixed for the life of the channel (e.g. Env::Now() since its
// epoch). The channel only compares and adds these.
using SteadyTime = std::chrono::nanoseconds;

inline constexpr uint32_t kChannelProtocolVersion = 1;
inline constexpr size_t kFrameHeaderLen = 2;                                           // bytes
inline constexpr size_t kMaxRecordPlaintext = noise::kMaxMessageLen - noise::kTagLen;  // 65519
inline constexpr uint8_t kRecordFirst = 0x01;       // record starts a message; u64be total follows
inline constexpr uint8_t kRecordRekey = 0x02;       // both sides Rekey() this direction after it
inline constexpr size_t kFirstRecordHeaderLen = 9;  // flags + u64be total
inline constexpr size_t kIdentityProofLen = kEd25519PublicKeyLen + kEd25519SignatureLen;  // 96

struct SecureChannelOptions {
  uint32_t protocol_version = kChannelProtocolVersion;
  // Names the consortium; sites with different ids cannot complete a
  // handshake. 1-255 bytes.
  std::string consortium_id;
  // Largest application message accepted or sent, bytes. A peer declaring
  // more is refused before anything is allocated.
  uint64_t max_message_bytes = uint64_t{64} << 20;
  // Largest amount of encrypted output waiting for MarkBytesSent (including
  // messages queued before the handshake completes), bytes. Must leave room
  // for one message of max_message_bytes; Create checks.
  size_t max_send_buffer_bytes = size_t{80} << 20;
  // Each direction rekeys (Noise Rekey) after this many records or this many
  // frame bytes since its last rekey, whichever comes first. The sender
  // decides and marks the record, so the two sides need not agree on these.
  uint64_t rekey_after_records = uint64_t{1} << 16;
  uint64_t rekey_after_bytes = uint64_t{1} << 30;
  // The handshake must complete within this long of Create's `now`.
  SteadyTime handshake_timeout = std::chrono::seconds(10);
  // Ciphertext encrypted ahead of the writer, bytes (a record more may be
  // added past it). A message whose encoding fits is encrypted whole by Send
  // when the output is empty. Must be positive.
  size_t encrypt_ahead_bytes = size_t{1} << 20;
};

enum class ChannelRole { kInitiator, kResponder };

// True when the peer's Ed25519 key is pinned (e.g. PeerList::IsPinned).
using PinnedKeyCheck = std::function<bool(const Ed25519PublicKey&)>;

class SecureChannel {
 public:
  // Starts a handshake. The initiator's first message is ready in
  // GetBytesToSend() when this returns. `identity` is copied. `static_key` is
  // the X25519 Noise static key; leave it unset to use a fresh one for this
  // connection (it is proved by the identity signature, so it need not be
  // long-lived). kInvalidArgument for bad options.
  static Result<SecureChannel> Create(ChannelRole role, const SiteIdentity& identity,
                                      PinnedKeyCheck is_pinned, const SecureChannelOptions& options,
                                      SteadyTime now,
                                      std::optional<noise::KeyPair> static_key = std::nullopt);

  SecureChannel(SecureChannel&&) = default;
  SecureChannel& operator=(SecureChannel&&) = default;
  SecureChannel(const SecureChannel&) = delete;
  SecureChannel& operator=(const SecureChannel&) = delete;

  // --- input ---
  // Consumes bytes from the peer, split anywhere. Returns the session's
  // status: OK, or the error that closed it (now or earlier).
  Status ReceivedBytes(ByteView bytes);
  // The next complete application message, in order; nullopt when none is
  // ready or the session has failed.
  std::optional<Bytes> NextMessage();
  // The peer closed its side. kCorruption (and the session fails) if the
  // stream ended inside a frame or a multi-record message.
  Status EndOfStream();
  // Fails the session (kUnavailable) if the handshake is not complete at
  // `now` >= deadline(). Returns the session's status.
  Status CheckDeadline(SteadyTime now);
  SteadyTime deadline() const { return deadline_; }

  // --- output ---
  // Queues `message` for the peer: encrypted now up to encrypt_ahead_bytes
  // of output (nothing before the handshake completes), the rest copied and
  // encrypted as the output drains. See the header comment for the errors.
  Status Send(ByteView message);
  // The same without the copy: the channel keeps `message` (which must not
  // be null, and must not change) until its last record is encrypted.
  Status Send(std::shared_ptr<const Bytes> message);
  // Bytes to write to the peer now; empty when nothing is pending or the
  // session failed. May be a prefix of what is pending (see above). Valid
  // until the next non-const call.
  ByteView GetBytesToSend() const;
  // Precondition: n <= GetBytesToSend().size(). Encrypts more of what is
  // pending once the written output is used up.
  void MarkBytesSent(size_t n);
  // Output waiting to be sent, counting messages or parts of messages not
  // yet encrypted at their encrypted size.
  size_t pending_send_bytes() const;

  // --- state ---
  bool IsEstablished() const { return state_ == State::kEstablished; }
  bool HasFailed() const { return state_ == State::kFailed; }
  const Status& status() const { return status_; }
  ChannelRole role() const { return role_; }
  // The peer's verified and pinned identity, once established.
  const std::optional<Ed25519PublicKey>& peer_identity() const { return peer_identity_; }
  // The Noise handshake hash once established: unique to this session, the
  // same on both sides (for channel binding by higher layers).
  const Bytes& session_hash() const { return session_hash_; }
  uint64_t rekeys_sent() const { return rekeys_sent_; }
  uint64_t rekeys_received() const { return rekeys_received_; }
  bool HasPartialInput() const { return header_have_ > 0 || assembling_total_.has_value(); }

  // Encrypted size of a message of `size` bytes: its frames, headers and tags.
  static uint64_t EncodedSize(uint64_t size);

 private:
  enum class State { kHandshake, kEstablished, kFailed };

  SecureChannel(ChannelRole role, const SiteIdentity& identity, PinnedKeyCheck is_pinned,
                const SecureChannelOptions& options, SteadyTime now, noise::HandshakeState hs,
                noise::KeyPair static_key);

  // A message (or its unencrypted rest) waiting to be encrypted.
  struct PendingMessage {
    std::shared_ptr<const Bytes> owner;  // keeps `data` alive
    ByteView data;                       // the message (only its rest once started)
    size_t offset = 0;                   // bytes of `data` already encrypted
    bool started = false;                // its first record has been encrypted
    uint64_t encoded_left = 0;           // its frames not yet encrypted, bytes
  };

  Status Fail(Status status);
  Status SendImpl(ByteView message, std::shared_ptr<const Bytes> owner);
  // Decrypts a transport frame to `plaintext` (frame.size() - tag bytes; may
  // be frame.data()) and processes the record.
  Status ProcessTransportFrame(ByteView frame, uint8_t* plaintext);
  Status ProcessHandshakeFrame(ByteView frame);
  Status ProcessRecord(ByteView plaintext);
  // Verifies a proof payload for `peer_static` and the hash before it; sets peer_identity_.
  Status CheckIdentityProof(ByteView payload, char peer_role, const noise::PublicKey& peer_static,
                            const noise::HashOutput& hash_before);
  Bytes MakeIdentityProof(char my_role, const noise::HashOutput& hash_before) const;
  Status Establish();
  void AppendFrame(ByteView noise_message);
  // Makes room for `n` more bytes at the end of the output and returns where
  // they go (the caller then advances out_end_).
  uint8_t* ReserveOutput(size_t n);
  // Encrypts the next record of `m` onto the output.
  Status EncryptRecord(PendingMessage& m);
  // Encrypts pending records while less than encrypt_ahead_bytes are unsent.
  Status EncryptAhead();
  // Expected length of handshake message `index`, or 0 once transport begins.
  size_t ExpectedHandshakeFrameLen() const;

  ChannelRole role_;
  SiteIdentity identity_;
  PinnedKeyCheck is_pinned_;
  SecureChannelOptions options_;
  SteadyTime deadline_;
  noise::KeyPair static_key_;
  std::optional<noise::HandshakeState> handshake_;
  std::optional<noise::CipherState> send_cipher_;
  std::optional<noise::CipherState> receive_cipher_;
  State state_ = State::kHandshake;
  Status status_;
  std::optional<Ed25519PublicKey> peer_identity_;
  Bytes session_hash_;

  // Input framing: the 2-byte header, then the frame body.
  uint8_t header_[kFrameHeaderLen] = {0, 0};
  size_t header_have_ = 0;
  size_t frame_len_ = 0;
  std::unique_ptr<uint8_t[]> frame_;  // kMaxMessageLen bytes once a frame is buffered
  size_t frame_have_ = 0;
  // The application message being assembled from records.
  std::optional<uint64_t> assembling_total_;
  Bytes assembling_;
  std::deque<Bytes> received_;

  // Output: unsent ciphertext is out_[out_begin_, out_end_). Not a vector, so
  // growing it does not zero-fill what is about to be overwritten.
  std::unique_ptr<uint8_t[]> out_;
  size_t out_capacity_ = 0;
  size_t out_begin_ = 0;
  size_t out_end_ = 0;
  std::deque<PendingMessage> pending_;  // not yet (fully) encrypted, in order
  uint64_t pending_encoded_bytes_ = 0;  // sum of their encoded_left
  uint64_t send_records_since_rekey_ = 0;
  uint64_t send_bytes_since_rekey_ = 0;
  uint64_t rekeys_sent_ = 0;
  uint64_t rekeys_received_ = 0;
};

// The prologue both sides bind into the handshake.
Bytes ChannelPrologue(uint32_t protocol_version, std::string_view consortium_id);

// What an identity proof signs: "dpnode-channel identity proof v1" ||
// role ('I' initiator, 'R' responder) || Noise static public key || h.
Bytes IdentityProofMessage(char role, const noise::PublicKey& static_key, ByteView handshake_hash);

}  // namespace dpnode::crypto

#endif  // DPNODE_CRYPTO_SECURE_CHANNEL_H_
