// aio::SendFile on both backends (sendfile(2) on readiness; io_uring's POLLOUT is a poll SQE):
// a 64 MiB file byte for byte, odd ranges, ordering with Write, and the failure cases (peer
// gone, file truncated mid-transfer, bad descriptor, close during the transfer).
#include "aio/sendfile.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "aio/internal/pattern_file.h"
#include "net/internal/test_loop.h"
#include "net/listener.h"

namespace kev::aio {
namespace {

using net::Connection;
using net::internal::TestLoop;

using test_pattern::Expected;

// A temporary file of pattern bytes, opened read-write.
class TempFile : public test_pattern::PatternFile {
 public:
  explicit TempFile(size_t size) : PatternFile(size, "sendfile") {}
};

Future<std::string> ReadToEnd(Connection* c) {
  std::string out;
  while (true) {
    std::span<const std::byte> data = co_await c->ReadSome();
    if (data.empty()) break;
    out.append(reinterpret_cast<const char*>(data.data()), data.size());
    c->Consume(data.size());
  }
  co_return out;
}

struct Range {
  off_t offset;
  size_t count;
};

// What a ranges test receives after `prefix`: "<i>" and then range i's bytes, for each range,
// then "END". *total gets the file bytes.
std::string ExpectedRanges(const std::string& prefix, const std::vector<Range>& ranges,
                           size_t* total) {
  std::string expected = prefix;
  *total = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    expected += "<" + std::to_string(i) + ">" + Expected(ranges[i].offset, ranges[i].count);
    *total += ranges[i].count;
  }
  return expected + "END";
}

// Writes "<i>" before each range, then "END", then closes.
Future<size_t> ServeRanges(Connection* c, int fd, std::vector<Range> ranges) {
  size_t total = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    co_await c->Write("<" + std::to_string(i) + ">");
    total += co_await SendFile(*c, fd, ranges[i].offset, ranges[i].count);
  }
  co_await c->Write("END");
  co_await c->Flush();
  co_await c->ShutdownOutput();
  co_return total;
}

class SendFileTest : public testing::TestWithParam<PollerBackend> {
 protected:
  // A connected pair: server_ (accepted) and client_.
  void Connect(net::SocketOptions client_options = {}, net::SocketOptions server_options = {}) {
    net::ListenOptions options;
    options.connection_options = server_options;
    listener_ = net::Listen(net::SocketAddress::Loopback4(0), options);
    Future<Connection> accepted = listener_.Accept();
    client_ = loop_.Run(net::Connect(listener_.local_address(), client_options));
    server_ = loop_.Run(std::move(accepted));
  }
  // Turns the loop until the transfer stops making progress (the peer does not read).
  template <class T>
  void TurnUntilStalled(const Future<T>&) {
    loop_.TurnUntilIdle();
  }

  TestLoop loop_{GetParam()};
  net::Listener listener_;
  Connection server_;
  Connection client_;
};

INSTANTIATE_TEST_SUITE_P(Backends, SendFileTest,
                         testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         net::internal::BackendName);

TEST_P(SendFileTest, SixtyFourMebibytesByteForByte) {
  constexpr size_t kSize = 64 << 20;
  TempFile file(kSize);
  net::SocketOptions big_input;
  big_input.input_buffer_size = 256 * 1024;
  Connect(big_input);
  Future<std::string> received = ReadToEnd(&client_);
  EXPECT_EQ(loop_.Run(ServeRanges(&server_, file.fd(), {{0, kSize}})), kSize);
  std::string got = loop_.Run(std::move(received));
  ASSERT_EQ(got.size(), 3 + kSize + 3);
  EXPECT_EQ(got.substr(0, 3), "<0>");
  EXPECT_TRUE(got.compare(3, kSize, Expected(0, kSize)) == 0) << "file bytes differ";
  EXPECT_EQ(got.substr(3 + kSize), "END");
}

TEST_P(SendFileTest, OddRangesInOrderWithWrites) {
  constexpr size_t kSize = 3 << 20;
  TempFile file(kSize);
  Connect();
  std::vector<Range> ranges = {{0, 1},         {1, 1},           {4095, 3},         {12345, 100001},
                               {kSize - 7, 7}, {65535, 1 << 20}, {777, kSize - 777}};
  size_t total = 0;
  const std::string expected = ExpectedRanges("", ranges, &total);
  Future<std::string> received = ReadToEnd(&client_);
  EXPECT_EQ(loop_.Run(ServeRanges(&server_, file.fd(), ranges)), total);
  std::string got = loop_.Run(std::move(received));
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
}

TEST_P(SendFileTest, WritesDuringTheTransferGoAfterIt) {
  TempFile file(1 << 20);
  Connect();
  Future<std::string> received = ReadToEnd(&client_);
  loop_.Run(server_.Write("before|"));
  Future<size_t> sent = SendFile(server_, file.fd(), 10, 500000);
  loop_.Run(server_.Write("|after"));  // written while the transfer runs: held until it ends
  EXPECT_EQ(loop_.Run(std::move(sent)), 500000u);
  loop_.Run(server_.ShutdownOutput());
  EXPECT_TRUE(loop_.Run(std::move(received)) == "before|" + Expected(10, 500000) + "|after");
}

// SendFile with a head: the head is copied at the call, goes out before the file (after any
// earlier writes), and the result counts file bytes only.
Future<size_t> ServeRangesWithHeads(Connection* c, int fd, std::vector<Range> ranges) {
  size_t total = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    std::string head = "<" + std::to_string(i) + ">";
    Future<size_t> sent = SendFile(*c, head, fd, ranges[i].offset, ranges[i].count);
    head.assign(head.size(), '#');  // copied by the call
    total += co_await std::move(sent);
  }
  co_await c->Write("END");
  co_await c->Flush();
  co_await c->ShutdownOutput();
  co_return total;
}

TEST_P(SendFileTest, HeadThenFileByteForByte) {
  constexpr size_t kSize = 3 << 20;
  TempFile file(kSize);
  Connect();
  // Zero-length ranges are plain writes of the head; the big range outruns the socket buffer,
  // so the head and then the file resume from POLLOUT.
  std::vector<Range> ranges = {{0, 1}, {5, 0}, {4095, 65536}, {0, kSize}, {kSize - 7, 7}};
  size_t total = 0;
  const std::string expected = ExpectedRanges("first|", ranges, &total);
  Future<std::string> received = ReadToEnd(&client_);
  loop_.Run(server_.Write("first|"));  // still unsent when the first SendFile starts
  EXPECT_EQ(loop_.Run(ServeRangesWithHeads(&server_, file.fd(), ranges)), total);
  std::string got = loop_.Run(std::move(received));
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
}

TEST_P(SendFileTest, HeadWhileTheSocketIsFullWaitsForRoom) {
  TempFile file(1 << 20);
  net::SocketOptions small;
  small.receive_buffer_size = 64 * 1024;
  small.send_buffer_size = 64 * 1024;
  Connect(small, small);
  Future<size_t> first = SendFile(server_, file.fd(), 0, 1 << 20);  // fills the buffers
  TurnUntilStalled(first);
  ASSERT_FALSE(first.Available());
  Future<std::string> received = ReadToEnd(&client_);
  EXPECT_EQ(loop_.Run(std::move(first)), 1u << 20);
  EXPECT_EQ(loop_.Run(SendFile(server_, "HEAD|", file.fd(), 100, 200000)), 200000u);
  loop_.Run(server_.ShutdownOutput());
  EXPECT_TRUE(loop_.Run(std::move(received)) ==
              Expected(0, 1 << 20) + "HEAD|" + Expected(100, 200000));
}

TEST_P(SendFileTest, HeadToAVanishedPeerFails) {
  TempFile file(1 << 20);
  Connect();
  linger reset{1, 0};
  setsockopt(client_.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  loop_.Run(client_.Close());
  loop_.TurnUntilIdle();
  try {
    // The RST may arrive after a first send: a large file makes sure one syscall fails.
    loop_.Run(SendFile(server_, "HTTP/1.1 200 OK\r\n\r\n", file.fd(), 0, 1 << 20));
    ADD_FAILURE() << "transfer to a vanished peer succeeded";
  } catch (const std::system_error& e) {
    EXPECT_TRUE(e.code().value() == EPIPE || e.code().value() == ECONNRESET) << e.what();
  }
}

TEST_P(SendFileTest, PeerClosingMidTransferFails) {
  TempFile file(16 << 20);
  net::SocketOptions small;
  small.receive_buffer_size = 64 * 1024;
  Connect(small, small);
  Future<size_t> sent = SendFile(server_, file.fd(), 0, 16 << 20);
  TurnUntilStalled(sent);
  std::span<const std::byte> some = loop_.Run(client_.ReadSome());
  EXPECT_FALSE(some.empty());
  linger reset{1, 0};
  setsockopt(client_.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  loop_.Run(client_.Close());  // RST: the server's next splice/sendfile fails
  try {
    loop_.Run(std::move(sent));
    ADD_FAILURE() << "transfer to a vanished peer succeeded";
  } catch (const std::system_error& e) {
    EXPECT_TRUE(e.code().value() == EPIPE || e.code().value() == ECONNRESET) << e.what();
  }
  EXPECT_THROW(loop_.Run(server_.Write("x")), std::system_error);  // output is broken now
}

Future<int> SendAndReport(Connection* c, int fd, size_t count) {
  int error = 0;
  try {
    co_await SendFile(*c, fd, 0, count);
  } catch (const std::system_error& e) {
    error = e.code().value();
  }
  co_await c->Close();
  co_return error;
}

TEST_P(SendFileTest, FileTruncatedMidTransferFailsInsteadOfHanging) {
  constexpr size_t kSize = 16 << 20;
  TempFile file(kSize);
  net::SocketOptions small;
  small.receive_buffer_size = 64 * 1024;
  small.send_buffer_size = 64 * 1024;
  Connect(small, small);
  Future<int> result = SendAndReport(&server_, file.fd(), kSize);
  TurnUntilStalled(result);
  ASSERT_FALSE(result.Available()) << "the transfer should be stalled on the unread socket";
  ASSERT_EQ(ftruncate(file.fd(), 1 << 20), 0);
  std::string got = loop_.Run(ReadToEnd(&client_));
  EXPECT_EQ(loop_.Run(std::move(result)), ENODATA);
  EXPECT_LT(got.size(), kSize);
  EXPECT_TRUE(got == Expected(0, got.size())) << "bytes sent before the truncation are intact";
}

TEST_P(SendFileTest, BadFileDescriptor) {
  Connect();
  try {
    loop_.Run(SendFile(server_, 1 << 20, 0, 100));
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
  EXPECT_THROW(loop_.Run(SendFile(server_, -1, 0, 100)), std::system_error);
  Connection none;
  EXPECT_THROW(loop_.Run(SendFile(none, 0, 0, 1)), std::system_error);
  EXPECT_EQ(loop_.Run(SendFile(client_, 0, 0, 0)), 0u);  // nothing to send
}

TEST_P(SendFileTest, CloseDuringTransferCancelsIt) {
  TempFile file(16 << 20);
  net::SocketOptions small;
  small.receive_buffer_size = 64 * 1024;
  Connect(small, small);
  Future<size_t> sent = SendFile(server_, file.fd(), 0, 16 << 20);
  TurnUntilStalled(sent);
  ASSERT_FALSE(sent.Available());
  loop_.Run(server_.Close());
  try {
    loop_.Run(std::move(sent));
    ADD_FAILURE() << "transfer survived Close()";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECANCELED);
  }
  loop_.Run(client_.Close());
  loop_.Run(listener_.Close());
  loop_.Drain();
  EXPECT_EQ(loop_.poller().InFlight(), 0u);
}

}  // namespace
}  // namespace kev::aio
