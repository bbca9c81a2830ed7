// Layout and constants of kevent/ukevent.h, as C++ and as C (kevent_c_check.c) see them.
#include "kevent/ukevent.h"

#include <cstddef>

#include "gtest/gtest.h"

extern "C" {
struct kev_c_layout {
  size_t ukevent_size, ukevent_align, ring_size, off_type, off_event, off_req_flags, off_ret_flags,
      off_ret_data, off_ptr, off_ring_event;
};
kev_c_layout kev_c_get_layout(void);
int kev_c_init_and_close(void);
}

namespace {

TEST(UkeventTest, LayoutIsTheAbi) {
  EXPECT_EQ(sizeof(kevent_id), 8u);
  EXPECT_EQ(sizeof(ukevent), 40u);
  EXPECT_EQ(alignof(ukevent), 8u);
  EXPECT_EQ(offsetof(ukevent, id), 0u);
  EXPECT_EQ(offsetof(ukevent, type), 8u);
  EXPECT_EQ(offsetof(ukevent, event), 12u);
  EXPECT_EQ(offsetof(ukevent, req_flags), 16u);
  EXPECT_EQ(offsetof(ukevent, ret_flags), 20u);
  EXPECT_EQ(offsetof(ukevent, ret_data), 24u);
  EXPECT_EQ(offsetof(ukevent, user), 32u);
  EXPECT_EQ(offsetof(ukevent, ptr), 32u);
  EXPECT_EQ(sizeof(kevent_ring), 8u);
  EXPECT_EQ(offsetof(kevent_ring, ring_kidx), 0u);
  EXPECT_EQ(offsetof(kevent_ring, ring_over), 4u);
}

TEST(UkeventTest, CSeesTheSameLayout) {
  const kev_c_layout c = kev_c_get_layout();
  EXPECT_EQ(c.ukevent_size, sizeof(ukevent));
  EXPECT_EQ(c.ukevent_align, alignof(ukevent));
  EXPECT_EQ(c.ring_size, sizeof(kevent_ring));
  EXPECT_EQ(c.off_type, offsetof(ukevent, type));
  EXPECT_EQ(c.off_event, offsetof(ukevent, event));
  EXPECT_EQ(c.off_req_flags, offsetof(ukevent, req_flags));
  EXPECT_EQ(c.off_ret_flags, offsetof(ukevent, ret_flags));
  EXPECT_EQ(c.off_ret_data, offsetof(ukevent, ret_data));
  EXPECT_EQ(c.off_ptr, offsetof(ukevent, ptr));
  EXPECT_EQ(c.off_ring_event, sizeof(kevent_ring));
}

TEST(UkeventTest, CCanCallTheApi) { EXPECT_EQ(kev_c_init_and_close(), 0); }

TEST(UkeventTest, IdRawAliasesRawU64) {
  kevent_id id{};
  id.raw[0] = 0x11223344;
  id.raw[1] = 0x55667788;
  EXPECT_EQ(id.raw_u64, 0x5566778811223344ull);  // little-endian x86-64
  id.raw_u64 |= KEVENT_SIGNAL_NOMASK;
  EXPECT_EQ(id.raw[1] & 0x80000000u, 0x80000000u);
}

TEST(UkeventTest, ConstantsAreTheSpecs) {
  EXPECT_EQ(KEVENT_REQ_ONESHOT, 0x1);
  EXPECT_EQ(KEVENT_REQ_WAKEUP_ALL, 0x2);
  EXPECT_EQ(KEVENT_REQ_ET, 0x4);
  EXPECT_EQ(KEVENT_REQ_LAST_CHECK, 0x8);
  EXPECT_EQ(KEVENT_REQ_ALWAYS_QUEUE, 0x10);
  EXPECT_EQ(KEVENT_REQ_READY, 0x20);
  EXPECT_EQ(KEVENT_RET_BROKEN, 0x1);
  EXPECT_EQ(KEVENT_RET_DONE, 0x2);
  EXPECT_EQ(KEVENT_RET_COPY_FAILED, 0x4);
  EXPECT_EQ(KEVENT_SOCKET, 0);
  EXPECT_EQ(KEVENT_INODE, 1);
  EXPECT_EQ(KEVENT_TIMER, 2);
  EXPECT_EQ(KEVENT_POLL, 3);
  EXPECT_EQ(KEVENT_NAIO, 4);
  EXPECT_EQ(KEVENT_AIO, 5);
  EXPECT_EQ(KEVENT_PIPE, 6);
  EXPECT_EQ(KEVENT_SIGNAL, 7);
  EXPECT_EQ(KEVENT_POSIX_TIMER, 8);
  EXPECT_EQ(KEVENT_UNOTIFY, 9);
  EXPECT_EQ(KEVENT_MAX, 10);
  EXPECT_EQ(KEVENT_TIMER_FIRED, 0x1);
  EXPECT_EQ(KEVENT_SOCKET_RECV, 0x1);
  EXPECT_EQ(KEVENT_SOCKET_ACCEPT, 0x2);
  EXPECT_EQ(KEVENT_SOCKET_SEND, 0x4);
  EXPECT_EQ(KEVENT_INODE_CREATE, 0x1);
  EXPECT_EQ(KEVENT_INODE_REMOVE, 0x2);
  EXPECT_EQ(KEVENT_POLL_POLLIN, 0x1);
  EXPECT_EQ(KEVENT_POLL_POLLPRI, 0x2);
  EXPECT_EQ(KEVENT_POLL_POLLOUT, 0x4);
  EXPECT_EQ(KEVENT_POLL_POLLERR, 0x8);
  EXPECT_EQ(KEVENT_POLL_POLLHUP, 0x10);
  EXPECT_EQ(KEVENT_POLL_POLLNVAL, 0x20);
  EXPECT_EQ(KEVENT_POLL_POLLRDNORM, 0x40);
  EXPECT_EQ(KEVENT_POLL_POLLRDBAND, 0x80);
  EXPECT_EQ(KEVENT_POLL_POLLWRNORM, 0x100);
  EXPECT_EQ(KEVENT_POLL_POLLWRBAND, 0x200);
  EXPECT_EQ(KEVENT_POLL_POLLMSG, 0x400);
  EXPECT_EQ(KEVENT_POLL_POLLREMOVE, 0x1000);
  EXPECT_EQ(KEVENT_POLL_POLLRDHUP, 0x2000);
  EXPECT_EQ(KEVENT_AIO_BIO, 0x1);
  EXPECT_EQ(KEVENT_SIGNAL_DELIVERY, 0x1);
  EXPECT_EQ(KEVENT_SIGNAL_NOMASK, 0x8000000000000000ULL);
  EXPECT_EQ(KEVENT_MASK_ALL, 0xffffffffu);
  EXPECT_EQ(KEVENT_MASK_EMPTY, 0x0);
  EXPECT_EQ(KEVENT_CTL_ADD, 0);
  EXPECT_EQ(KEVENT_CTL_REMOVE, 1);
  EXPECT_EQ(KEVENT_CTL_MODIFY, 2);
  EXPECT_EQ(KEVENT_CTL_READY, 3);
  EXPECT_EQ(KEVENT_FLAGS_ABSTIME, 1);
}

}  // namespace
