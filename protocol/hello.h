// Deciding whether a peer's Hello lets the session go on.
//
// Both sides send Hello first and both run CheckHello on what they receive,
// so a mismatch gives each operator a clear log line (from the Status) and
// the other one a Goodbye saying why, instead of a silent hang.
#ifndef DPNODE_PROTOCOL_HELLO_H_
#define DPNODE_PROTOCOL_HELLO_H_

#include <string>

#include "base/status.h"
#include "protocol/messages.h"

namespace dpnode::protocol {

// OK when `theirs` speaks our protocol version, is in our consortium and
// trains our model (checked in that order: a peer of another version may
// mean something else by the other fields). Otherwise FailedPrecondition
// worded for our log, e.g.
//   peer "St Mary" speaks protocol version 3, we speak 2
//   peer "St Mary" is in consortium "eicu-b", we are in "eicu-a"
//   peer "St Mary" trains model fingerprint ab12cd34…, we train 9f00e1aa…
// and, when `goodbye` is not null, sets it to the Goodbye to send, worded for
// the peer's log ("we speak protocol version 2, you speak 3"). `goodbye` is
// left untouched on OK. Both Hellos are assumed Validate()d (Decode does).
Status CheckHello(const Hello& mine, const Hello& theirs, Goodbye* goodbye = nullptr);

// First 4 bytes of a fingerprint in hex followed by "…" (for logs).
std::string ShortFingerprint(ByteView fingerprint);

}  // namespace dpnode::protocol

#endif  // DPNODE_PROTOCOL_HELLO_H_
