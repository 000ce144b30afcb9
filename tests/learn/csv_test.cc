// Tests of the RFC 4180 reader: quoting, line ends, limits, and every syntax
// error naming the file, the line and the column.
#include "node/learn/data/csv.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace dpnode::learn {
namespace {

using Records = std::vector<CsvRecord>;

Result<Records> ReadAll(std::string_view bytes, CsvLimits limits = {}, bool header = false) {
  CsvReader reader(bytes, "t.csv", limits);
  Records out;
  CsvRecord r;
  while (true) {
    auto got = reader.Next(&r);
    if (!got.ok()) return got.status();
    if (!*got) break;
    if (header && out.empty()) reader.SetColumns(r.fields);
    out.push_back(r);
  }
  return out;
}

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

TEST_CASE("plain records with LF, CRLF and no final line end") {
  auto r = ReadAll("a,b,c\n1,2,3\r\n4,,6");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 3);
  CHECK((*r)[0].fields == std::vector<std::string>{"a", "b", "c"});
  CHECK((*r)[1].fields == std::vector<std::string>{"1", "2", "3"});
  CHECK((*r)[2].fields == std::vector<std::string>{"4", "", "6"});
  CHECK((*r)[0].line == 1);
  CHECK((*r)[1].line == 2);
  CHECK((*r)[2].line == 3);
}

TEST_CASE("quoted fields: separators, doubled quotes, line ends inside") {
  auto r = ReadAll(
      "name,note\r\n\"Smith, J\",\"said \"\"hi\"\"\"\n\"two\nlines\",\"\"\nx,\"cr\r\nlf\"\n");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 4);
  CHECK((*r)[1].fields == std::vector<std::string>{"Smith, J", "said \"hi\""});
  CHECK((*r)[2].fields == std::vector<std::string>{"two\nlines", ""});
  CHECK((*r)[3].fields == std::vector<std::string>{"x", "cr\r\nlf"});
  // A record starts on the line where its first byte is; the quoted line end
  // moves the next record down one line.
  CHECK((*r)[2].line == 3);
  CHECK((*r)[3].line == 5);
}

TEST_CASE("a trailing separator makes one more empty field, and a BOM is skipped") {
  auto r = ReadAll(
      "\xEF\xBB\xBF"
      "a,b,\n");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 1);
  CHECK((*r)[0].fields == std::vector<std::string>{"a", "b", ""});
  auto end = ReadAll("a,b,");
  REQUIRE(end.ok());
  CHECK((*end)[0].fields == std::vector<std::string>{"a", "b", ""});
}

TEST_CASE("empty input has no records") {
  auto r = ReadAll("");
  REQUIRE(r.ok());
  CHECK(r->empty());
}

TEST_CASE("unterminated quote names the line where the quote opened and the column") {
  auto r = ReadAll("a,b\n1,2\n3,\"open\n\n\n", {}, true);
  REQUIRE(!r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(Contains(r.status().message(), "t.csv:3:"));
  CHECK(Contains(r.status().message(), "column 'b'"));
  CHECK(Contains(r.status().message(), "unterminated"));
}

TEST_CASE("a quote inside an unquoted field is refused") {
  auto r = ReadAll("a,b\n1,2\"3\n", {}, true);
  REQUIRE(!r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(Contains(r.status().message(), "t.csv:2: column 'b'"));
}

TEST_CASE("text after a closing quote is refused") {
  auto r = ReadAll("a,b\n\"x\"y,2\n", {}, true);
  REQUIRE(!r.ok());
  CHECK(Contains(r.status().message(), "t.csv:2: column 'a'"));
  CHECK(Contains(r.status().message(), "after a closing quote"));
}

TEST_CASE("a bare carriage return is refused") {
  auto r = ReadAll("a,b\n1,2\r3,4\n", {}, true);
  REQUIRE(!r.ok());
  CHECK(Contains(r.status().message(), "t.csv:2: column 'b'"));
  CHECK(Contains(r.status().message(), "carriage return"));
}

TEST_CASE("ragged rows are refused once the header is set") {
  auto short_row = ReadAll("a,b,c\n1,2,3\n4,5\n", {}, true);
  REQUIRE(!short_row.ok());
  CHECK(Contains(short_row.status().message(), "t.csv:3: column 'c'"));
  CHECK(Contains(short_row.status().message(), "2 fields, the header has 3"));
  auto long_row = ReadAll("a,b\n1,2,3\n", {}, true);
  REQUIRE(!long_row.ok());
  CHECK(Contains(long_row.status().message(), "t.csv:2: field 3"));
}

TEST_CASE("a record over the byte cap is refused, quoted or not") {
  CsvLimits limits;
  limits.max_record_bytes = 16;
  auto ok = ReadAll("0123456789\n", limits);
  CHECK(ok.ok());
  auto unquoted = ReadAll("a\n" + std::string(100, 'x') + "\n", limits, true);
  REQUIRE(!unquoted.ok());
  CHECK(Contains(unquoted.status().message(), "t.csv:2: column 'a'"));
  CHECK(Contains(unquoted.status().message(), "longer than 16 bytes"));
  // A stray quote cannot swallow the rest of a large file into one field.
  auto quoted = ReadAll("a\n\"" + std::string(100, '\n'), limits, true);
  REQUIRE(!quoted.ok());
  CHECK(Contains(quoted.status().message(), "t.csv:2:"));
  CHECK(Contains(quoted.status().message(), "longer than 16 bytes"));
}

TEST_CASE("after an error the reader keeps returning it") {
  CsvReader reader("\"x", "t.csv");
  CsvRecord r;
  auto first = reader.Next(&r);
  REQUIRE(!first.ok());
  auto second = reader.Next(&r);
  REQUIRE(!second.ok());
  CHECK(second.status().message() == first.status().message());
}

TEST_CASE("error messages show cells printably and briefly") {
  CHECK(QuoteForMessage("ab\x01") == "ab\\x01");
  CHECK(QuoteForMessage(std::string(50, 'z')) == std::string(40, 'z') + "...");
}

TEST_CASE("ReadFileCapped refuses files over the cap and reports absent files") {
  const auto dir = std::filesystem::temp_directory_path() / "dpnode_csv_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "big.csv").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(1000, 'x');
  }
  auto refused = ReadFileCapped(path, 999);
  REQUIRE(!refused.ok());
  CHECK(refused.status().code() == StatusCode::kInvalidArgument);
  CHECK(Contains(refused.status().message(), path));
  CHECK(Contains(refused.status().message(), "over the limit of 999 bytes"));
  auto read = ReadFileCapped(path, 1000);
  REQUIRE(read.ok());
  CHECK(read->size() == 1000);
  auto absent = ReadFileCapped((dir / "absent.csv").string(), 1000);
  CHECK(absent.status().code() == StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

// Arbitrary bytes, biased towards the characters the state machine cares
// about, must end in records or an InvalidArgument, never a crash or a hang.
TEST_CASE("arbitrary bytes never crash the reader") {
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  const char kAlphabet[] = {',', '"', '\n', '\r', 'a', '1', '\0', '\xff'};
  CsvLimits limits;
  limits.max_record_bytes = 64;
  int errors = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes(next() % 80, '\0');
    for (char& c : bytes) {
      c = (next() % 4 == 0) ? static_cast<char>(next() & 0xff)
                            : kAlphabet[next() % sizeof kAlphabet];
    }
    auto r = ReadAll(bytes, limits, true);
    if (!r.ok()) {
      CHECK(r.status().code() == StatusCode::kInvalidArgument);
      CHECK(Contains(r.status().message(), "t.csv:"));
      ++errors;
    }
  }
  // Both outcomes must actually occur, or the test exercises too little.
  CHECK(errors > 100);
  CHECK(errors < 3000);
}

}  // namespace
}  // namespace dpnode::learn
