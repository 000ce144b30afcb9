// Signing and verifying PeerRecords: the address statements that let a site
// learn where the rest of the consortium listens from any one peer.
//
// What is signed is a canonical byte string built from the record's fields,
// never the Cap'n Proto encoding, so any encoder (or a future schema with
// appended fields) yields records that verify the same way:
//
//   "dpnode peer record v1" 0x00      domain separation (22 bytes)
//   site_key                          32 bytes
//   sequence                          u64, little-endian
//   address count                     u32, little-endian
//   per address: host length (u16 LE), host bytes, port (u16 LE)
//
// Verifying proves the key holder made the statement; it does not say the key
// is a member: the receiver must also find site_key in its pinned peers.txt,
// and keep only the highest sequence per key.
#ifndef DPNODE_PROTOCOL_PEER_RECORD_H_
#define DPNODE_PROTOCOL_PEER_RECORD_H_

#include "base/status.h"
#include "crypto/identity.h"
#include "protocol/messages.h"

namespace dpnode::protocol {

// The bytes the signature covers (layout above).
// Precondition: Validate(record) is OK (hosts fit the u16 length).
Bytes PeerRecordSigningBytes(const PeerRecord& record);

// Sets record->site_key to the identity's public key and record->signature
// to its signature over the other fields. InvalidArgument (naming the field)
// when the record fails Validate().
Status SignPeerRecord(const crypto::SiteIdentity& identity, PeerRecord* record);

// OK when the record is valid and its signature verifies under its own
// site_key; Corruption ("peer_record.signature: does not verify") otherwise.
Status VerifyPeerRecord(const PeerRecord& record);

}  // namespace dpnode::protocol

#endif  // DPNODE_PROTOCOL_PEER_RECORD_H_
