// A bounded RFC 4180 CSV reader for a site's local data files.
//
// We parse CSV ourselves rather than through a library so that every way a
// hospital export can be wrong ends in a Status naming the file, the line and
// the column, and so that arbitrary bytes can never crash the node or make it
// allocate without bound.
//
// Accepted: fields separated by ',', records ended by LF or CRLF (the last one
// may be unterminated), fields quoted with '"' that may hold ',', CR, LF and
// '""' (one literal quote), and a UTF-8 byte-order mark at the very start.
// Refused with kInvalidArgument: an unterminated quote, a quote inside an
// unquoted field, anything but ',' or a line end after a closing quote, a CR
// not followed by LF outside quotes, a record longer than the cap, and (once
// the expected field count is set) a record with a different number of fields.
#ifndef DPNODE_NODE_LEARN_DATA_CSV_H_
#define DPNODE_NODE_LEARN_DATA_CSV_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dpnode::learn {

struct CsvLimits {
  // Whole file, bytes. Files above it are refused before being read.
  int64_t max_file_bytes = int64_t{1} << 30;  // 1 GiB
  // One record, bytes, counting its separators and any line ends inside
  // quoted fields (so a stray quote cannot swallow the rest of a huge file
  // into one field without being noticed).
  int64_t max_record_bytes = int64_t{1} << 20;  // 1 MiB
};

// One record with its fields unquoted. `line` is the 1-based physical line on
// which the record starts (a quoted field may carry it over several lines).
struct CsvRecord {
  std::vector<std::string> fields;
  int64_t line = 0;
};

// Pulls records one at a time from an in-memory buffer. `bytes` must outlive
// the reader. `source_name` (usually the file path) prefixes every error
// message: "<source>:<line>: column '<name>': <problem>".
class CsvReader {
 public:
  CsvReader(std::string_view bytes, std::string source_name, CsvLimits limits = {});

  // Reads the next record into *record. Returns true when one was read, false
  // at the end of the input; an error leaves the reader unusable (every later
  // call returns the same error).
  Result<bool> Next(CsvRecord* record);

  // Names the columns (normally the header record) so that errors name the
  // column, and makes every later record with a different field count an error.
  void SetColumns(std::vector<std::string> names);

  const std::string& source_name() const { return source_name_; }

  // "column 'chol'" for a named column, "field 7" otherwise (0-based index in,
  // 1-based number out, as a spreadsheet user counts).
  std::string DescribeColumn(size_t index) const;

 private:
  Status Fail(int64_t line, size_t field_index, const std::string& problem);

  std::string_view bytes_;
  std::string source_name_;
  CsvLimits limits_;
  size_t pos_ = 0;
  int64_t line_ = 1;
  std::vector<std::string> columns_;
  Status error_;
};

// Reads a whole file into memory, refusing it (kInvalidArgument) when it is
// larger than `max_file_bytes`. kNotFound when it does not exist, kIoError
// when it cannot be read.
Result<std::string> ReadFileCapped(const std::string& path, int64_t max_file_bytes);

// A short, printable rendering of a cell for error messages: at most 40
// bytes, non-printable bytes as \xNN.
std::string QuoteForMessage(std::string_view cell);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_DATA_CSV_H_
