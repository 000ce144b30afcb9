// RFC 4180 reader: a byte-at-a-time state machine over an in-memory buffer.
#include "node/learn/data/csv.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

namespace dpnode::learn {

namespace {
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
}  // namespace

CsvReader::CsvReader(std::string_view bytes, std::string source_name, CsvLimits limits)
    : bytes_(bytes), source_name_(std::move(source_name)), limits_(limits) {
  if (bytes_.substr(0, kUtf8Bom.size()) == kUtf8Bom) pos_ = kUtf8Bom.size();
}

void CsvReader::SetColumns(std::vector<std::string> names) { columns_ = std::move(names); }

std::string CsvReader::DescribeColumn(size_t index) const {
  if (index < columns_.size()) return "column '" + QuoteForMessage(columns_[index]) + "'";
  return "field " + std::to_string(index + 1);
}

Status CsvReader::Fail(int64_t line, size_t field_index, const std::string& problem) {
  error_ = Status::InvalidArgument(source_name_ + ":" + std::to_string(line) + ": " +
                                   DescribeColumn(field_index) + ": " + problem);
  return error_;
}

Result<bool> CsvReader::Next(CsvRecord* record) {
  if (!error_.ok()) return error_;
  record->fields.clear();
  record->line = line_;
  if (pos_ >= bytes_.size()) return false;

  const size_t record_start = pos_;
  const size_t n = bytes_.size();
  std::string field;
  auto too_long = [&] {
    return static_cast<int64_t>(pos_ - record_start) > limits_.max_record_bytes;
  };
  const std::string too_long_msg =
      "record longer than " + std::to_string(limits_.max_record_bytes) + " bytes";

  while (true) {  // one iteration per field
    field.clear();
    const size_t field_index = record->fields.size();
    bool end_of_record = false;
    if (pos_ < n && bytes_[pos_] == '"') {
      const int64_t quote_line = line_;
      ++pos_;
      bool closed = false;
      while (pos_ < n) {
        if (too_long()) return Fail(record->line, field_index, too_long_msg);
        const char c = bytes_[pos_];
        if (c == '"') {
          if (pos_ + 1 < n && bytes_[pos_ + 1] == '"') {
            field.push_back('"');
            pos_ += 2;
            continue;
          }
          ++pos_;
          closed = true;
          break;
        }
        if (c == '\n') ++line_;
        field.push_back(c);
        ++pos_;
      }
      if (!closed) {
        return Fail(quote_line, field_index, "unterminated quoted field (opened on this line)");
      }
      // After a closing quote only a separator or a line end may follow.
      if (pos_ < n && bytes_[pos_] != ',' && bytes_[pos_] != '\n' && bytes_[pos_] != '\r') {
        return Fail(line_, field_index,
                    "unexpected " + QuoteForMessage(bytes_.substr(pos_, 1)) +
                        " after a closing quote (quote the whole field and double inner quotes)");
      }
    } else {
      while (pos_ < n) {
        const char c = bytes_[pos_];
        if (c == ',' || c == '\n' || c == '\r') break;
        if (c == '"') {
          return Fail(line_, field_index,
                      "quote inside an unquoted field (quote the whole field and double inner "
                      "quotes)");
        }
        field.push_back(c);
        ++pos_;
        if (too_long()) return Fail(record->line, field_index, too_long_msg);
      }
    }
    if (too_long()) return Fail(record->line, field_index, too_long_msg);
    record->fields.push_back(field);

    if (pos_ >= n) {
      end_of_record = true;
    } else if (bytes_[pos_] == ',') {
      ++pos_;
      // A trailing separator at the very end of the input still opens one
      // (empty) last field, which the loop adds on its next pass.
    } else if (bytes_[pos_] == '\n') {
      ++pos_;
      ++line_;
      end_of_record = true;
    } else {  // '\r'
      if (pos_ + 1 < n && bytes_[pos_ + 1] == '\n') {
        pos_ += 2;
        ++line_;
        end_of_record = true;
      } else {
        return Fail(line_, field_index, "carriage return not followed by a line feed");
      }
    }
    if (end_of_record) break;
  }

  if (!columns_.empty() && record->fields.size() != columns_.size()) {
    const size_t got = record->fields.size();
    const size_t want = columns_.size();
    if (got < want) {
      return Fail(record->line, got,
                  "record has " + std::to_string(got) + " fields, the header has " +
                      std::to_string(want) + " (this and later columns are absent)");
    }
    return Fail(
        record->line, want,
        "record has " + std::to_string(got) + " fields, the header has " + std::to_string(want));
  }
  return true;
}

Result<std::string> ReadFileCapped(const std::string& path, int64_t max_file_bytes) {
  std::error_code ec;
  const std::filesystem::path p(path);
  if (!std::filesystem::exists(p, ec)) return Status::NotFound(path + ": no such file");
  if (!std::filesystem::is_regular_file(p, ec)) {
    return Status::InvalidArgument(path + ": not a regular file");
  }
  const auto size = std::filesystem::file_size(p, ec);
  if (ec) return Status::IoError(path + ": cannot stat: " + ec.message());
  if (size > static_cast<uintmax_t>(max_file_bytes)) {
    return Status::InvalidArgument(path + ": file is " + std::to_string(size) +
                                   " bytes, over the limit of " + std::to_string(max_file_bytes) +
                                   " bytes");
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) return Status::IoError(path + ": cannot open for reading");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size)) {
    return Status::IoError(path + ": short read (file changed while reading?)");
  }
  // A file that grew after the size check must still respect the cap.
  if (in.peek() != std::char_traits<char>::eof()) {
    return Status::IoError(path + ": file grew while being read");
  }
  return bytes;
}

std::string QuoteForMessage(std::string_view cell) {
  constexpr size_t kMaxShown = 40;
  std::string out;
  for (size_t i = 0; i < cell.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(cell[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (cell.size() > kMaxShown) out += "...";
  return out;
}

}  // namespace dpnode::learn
