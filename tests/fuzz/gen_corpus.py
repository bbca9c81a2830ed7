#!/usr/bin/env python3
"""Writes the seed corpora of the kevent fuzz targets (tests/fuzz/corpus/{kevent_ctl,ring_commit}).

The targets read their input with ByteReader (fuzz_input.h): Range(lo, hi) takes one byte when
the range has at most 256 values (value = lo + byte % span), U8/U16/U32 take 1/2/4 bytes
little-endian, Bool is the low bit of a byte, Chance(n) is "byte < n". The encoders below mirror
the programs' grammar, so each seed is a meaningful program (named after what it exercises), plus
a few pseudo-random ones from fixed seeds. Deterministic: re-running rewrites identical files.

  python3 tests/fuzz/gen_corpus.py      # from the repository root
"""
import os
import random
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# ukevent.h
SOCKET, INODE, TIMER, POLL, NAIO, AIO, PIPE, SIGNAL, POSIX_TIMER, UNOTIFY = range(10)
ONESHOT, WAKEUP_ALL, ET, LAST_CHECK, ALWAYS_QUEUE, READY = 1, 2, 4, 8, 16, 32
ADD, REMOVE, MODIFY, CTL_READY = "add", "remove", "modify", "ready"


class Prog:
    def __init__(self):
        self.b = bytearray()

    def rng(self, lo, v):
        self.b.append(v - lo)
        return self

    def u8(self, v):
        self.b.append(v & 0xFF)
        return self

    def u32(self, v):
        self.b += struct.pack("<I", v & 0xFFFFFFFF)
        return self


# --- kevent_ctl_fuzz.cc ------------------------------------------------------------------------

class CtlProg(Prog):
    def __init__(self, ring=0):
        super().__init__()
        if ring == 0:
            self.rng(0, 0)
        else:
            self.rng(0, 2).rng(0, ring - 2)

    def entry(self, type_, flags=0, ident=0, user=0, data=0, event=1, fd=0, bad_flags=None):
        kind = {UNOTIFY: 0, TIMER: 7, NAIO: 13}.get(type_)
        if kind is None:
            if type_ >= 10:
                self.rng(0, 14).u8(type_ - 10)
                kind = 14
            else:
                self.rng(0, 9).rng(0, type_)
        else:
            self.rng(0, kind)
        if bad_flags is not None:
            self.u8(0).u32(bad_flags)
        else:
            self.u8(255).u8(flags)  # not Chance(16): the low 6 bits are the flags
        self.rng(0, user).u8(data).u8(data >> 8)
        if type_ == UNOTIFY:
            self.rng(0, ident).rng(0, 0).u8(event)
        elif type_ == TIMER:
            sec, nsec = ident  # indexes into kSec / kNsec
            self.rng(0, sec).rng(0, nsec).u8(0 if event == 1 else 250)  # Chance(240)
            if event != 1:
                self.u32(event)
        elif type_ in (SOCKET, PIPE, POLL, INODE):
            self.rng(0, fd).u8(255).u8(event).u8(event >> 8)
        elif type_ == SIGNAL:
            self.rng(0, ident).u8(1).u8(0)
        else:
            self.u8(0).u8(ident).u32(event)
        return self

    def ctl(self, cmd, entries, null_arg=False):
        c = {ADD: 0, CTL_READY: 3, REMOVE: 5, MODIFY: 7}.get(cmd)
        self.rng(0, 0).rng(0, 9 if c is None else c)
        if c is None:
            self.u8(cmd)
        self.rng(0, len(entries))
        for e in entries:
            self.entry(**e)
        if entries:
            self.u8(0 if null_arg else 255)
        return self

    def get(self, max_nr=12, min_nr=0, timeout=0):
        return self.rng(0, 4).rng(0, max_nr).rng(0, min_nr).u8(255).rng(0, timeout)

    def wait(self, num=12, timeout=0):
        return self.rng(0, 6).rng(0, num).u8(1).rng(0, timeout)

    def commit_all(self):
        return self.rng(0, 7).rng(0, 0).rng(0, 0)

    def commit(self, uidx, over_kind):
        return self.rng(0, 7).rng(0, 3).rng(0, uidx).rng(0, over_kind)

    def activity(self, what):
        self.rng(0, 9).rng(0, what)
        return self.u8(0) if what in (1, 3) else self  # which end of the socket pair

    def poke_other(self, add):
        return self.rng(0, 10).rng(0, 1).u8(1 if add else 0)

    def reinit(self, ring):
        self.rng(0, 11).u8(0)
        if ring == 0:
            return self.rng(0, 0)
        return self.rng(0, 2).rng(0, ring - 2)


def uno(**kw):
    return dict(type_=UNOTIFY, **kw)


def ctl_seeds():
    s = {}
    s["unotify_add_ready_get"] = (CtlProg().ctl(ADD, [uno(ident=1)])
                                  .ctl(CTL_READY, [uno(ident=1, data=7)]).get())
    s["unotify_ready_coalesces"] = (CtlProg().ctl(ADD, [uno(ident=1), uno(ident=2)])
                                    .ctl(CTL_READY, [uno(ident=1, data=1), uno(ident=2, data=2),
                                                     uno(ident=1, data=3)]).get(max_nr=1).get())
    s["unotify_oneshot"] = (CtlProg().ctl(ADD, [uno(ident=3, flags=ONESHOT)])
                            .ctl(CTL_READY, [uno(ident=3)]).get()
                            .ctl(CTL_READY, [uno(ident=3)]).get())
    s["unotify_ready_at_add"] = CtlProg().ctl(ADD, [uno(ident=1, flags=READY),
                                                    uno(ident=2, flags=READY | ALWAYS_QUEUE),
                                                    uno(ident=3, flags=READY | ONESHOT)]).get()
    s["unotify_modify_requeues"] = (CtlProg().ctl(ADD, [uno(ident=1), uno(ident=2)])
                                    .ctl(CTL_READY, [uno(ident=1), uno(ident=2)])
                                    .ctl(MODIFY, [uno(ident=1, flags=READY)]).get(max_nr=1)
                                    .ctl(MODIFY, [uno(ident=2, flags=0)]).get())
    s["unotify_remove_ready"] = (CtlProg().ctl(ADD, [uno(ident=1, user=1)])
                                 .ctl(CTL_READY, [uno(ident=1, user=1)])
                                 .ctl(REMOVE, [uno(ident=1, user=1)]).get()
                                 .ctl(REMOVE, [uno(ident=1, user=1)]))
    s["unotify_same_id_other_user"] = (CtlProg().ctl(ADD, [uno(ident=4, user=0),
                                                           uno(ident=4, user=1),
                                                           uno(ident=4, user=1)])
                                       .ctl(CTL_READY, [uno(ident=4, user=1)]).get())
    s["unotify_last_check_et_wakeup_all"] = (
        CtlProg().ctl(ADD, [uno(ident=1, flags=LAST_CHECK), uno(ident=2, flags=ET),
                            uno(ident=3, flags=WAKEUP_ALL)])
        .ctl(CTL_READY, [uno(ident=i) for i in (3, 2, 1)]).get())
    s["ring_wait_commit"] = (CtlProg(ring=4).ctl(ADD, [uno(ident=i) for i in range(4)])
                             .ctl(CTL_READY, [uno(ident=i) for i in range(4)]).wait(num=3)
                             .commit_all().wait().commit_all())
    p = CtlProg(ring=3).ctl(ADD, [uno(ident=i) for i in range(5)])
    for _ in range(4):
        p.ctl(CTL_READY, [uno(ident=i, data=i) for i in range(5)]).wait(num=2).get(max_nr=2)
        p.commit_all()
    s["ring_wraps_with_commits"] = p
    s["ring_full_copy_failed"] = (CtlProg(ring=2).ctl(ADD, [uno(ident=i) for i in range(5)])
                                  .ctl(CTL_READY, [uno(ident=i) for i in range(5)]).get()
                                  .wait().commit(1, 0).commit_all())
    s["ring_commit_invalid"] = (CtlProg(ring=5).commit(4, 4).commit(0, 3).commit(9, 0)
                                .commit(1, 5).ctl(ADD, [uno(ident=0, flags=READY | ALWAYS_QUEUE)])
                                .wait().commit(1, 3).commit(1, 0))
    s["wait_without_ring"] = CtlProg().wait().commit_all()
    s["bad_timeouts"] = (CtlProg(ring=4).ctl(ADD, [uno(ident=1, flags=READY | ALWAYS_QUEUE)])
                         .get(timeout=6).u8(0).get(timeout=7).u32(4).wait(timeout=6).u8(1)
                         .get(timeout=5))
    s["invalid_types_and_flags"] = CtlProg().ctl(ADD, [
        dict(type_=NAIO), dict(type_=10), dict(type_=200), uno(ident=1, bad_flags=0x40),
        dict(type_=TIMER, ident=(2, 0), bad_flags=0x80000000)]).ctl(
        MODIFY, [dict(type_=NAIO), uno(ident=5)]).ctl(REMOVE, [dict(type_=12)])
    s["invalid_cmd_and_null_arg"] = (CtlProg().ctl(4, [uno(ident=1)]).ctl(250, [])
                                     .ctl(ADD, [uno(ident=1)], null_arg=True)
                                     .ctl(CTL_READY, []))
    s["timers"] = (CtlProg(ring=6).ctl(ADD, [
        dict(type_=TIMER, ident=(0, 1), flags=ONESHOT),
        dict(type_=TIMER, ident=(0, 2)),
        dict(type_=TIMER, ident=(3, 3)),
        dict(type_=TIMER, ident=(0, 0)),
        dict(type_=TIMER, ident=(2, 4)),
        dict(type_=TIMER, ident=(4, 3), event=2)]).get().wait()
        .ctl(REMOVE, [dict(type_=TIMER, ident=(0, 2))]).get())
    s["pipe_socket_poll"] = (CtlProg().ctl(ADD, [
        dict(type_=PIPE, fd=0, event=1), dict(type_=PIPE, fd=1, event=4),
        dict(type_=SOCKET, fd=2, event=1), dict(type_=SOCKET, fd=3, event=5, flags=ET),
        dict(type_=POLL, fd=0, event=1), dict(type_=POLL, fd=6, event=1),
        dict(type_=POLL, fd=8, event=1), dict(type_=PIPE, fd=4, event=1)])
        .activity(0).activity(1).get().get().activity(2).get().poke_other(True).get())
    s["nested_queue_and_self"] = (CtlProg().ctl(ADD, [dict(type_=POLL, fd=6, event=1),
                                                      dict(type_=POLL, fd=7, event=1)])
                                  .poke_other(True).get().poke_other(False).get())
    s["inode_signal_aio"] = CtlProg().ctl(ADD, [
        dict(type_=INODE, fd=4, event=3), dict(type_=SIGNAL, ident=0),
        dict(type_=SIGNAL, ident=3), dict(type_=SIGNAL, ident=5), dict(type_=AIO, ident=1),
        dict(type_=POSIX_TIMER, ident=1)]).get().ctl(REMOVE, [dict(type_=SIGNAL, ident=0)])
    s["reinit_between_rings"] = (CtlProg(ring=3).ctl(ADD, [uno(ident=1, flags=READY | ALWAYS_QUEUE)])
                                 .reinit(0).ctl(ADD, [uno(ident=1)]).ctl(CTL_READY, [uno(ident=1)])
                                 .reinit(17).wait())
    return s


# --- ring_commit_fuzz.cc -----------------------------------------------------------------------

class RingProg(Prog):
    def __init__(self, num, consumers, queue):
        super().__init__()
        self.rng(0, num - 2).rng(0, consumers - 1).u8(1 if queue else 0)
        self.queue = queue

    def op(self, op, consumer):
        return self.rng(0, op).rng(0, consumer)

    def produce(self, k, ready_ids=(), to_ring=True, max_=16):
        self.op(0, 0).rng(1, k)
        if self.queue:
            for i in range(k):
                self.rng(0, ready_ids[i % len(ready_ids)] if ready_ids else i % 16)
            self.u8(1 if to_ring else 0).rng(0, max_)
        return self

    def snapshot(self, c):
        return self.op(2, c)

    def read(self, c, k):
        return self.op(4, c).rng(0, k)

    def commit(self, c):
        return self.op(6, c)

    def resync(self, c):
        return self.op(8, c)

    def arbitrary(self, uidx, over_kind):
        return self.op(9, 0).u8(0).rng(0, uidx).rng(0, over_kind)


def ring_seeds():
    s = {}
    for queue in (False, True):
        tag = "queue" if queue else "ring"
        p = RingProg(4, 1, queue)
        for _ in range(6):
            p.produce(3).snapshot(0).read(0, 3).commit(0)
        s[tag + "_single_consumer_wraps"] = p
        p = RingProg(4, 2, queue).produce(4).snapshot(0).snapshot(1).read(0, 4).read(1, 4)
        s[tag + "_full_two_consumers"] = p.commit(0).commit(1).read(0, 0).resync(0).commit(0)
        p = RingProg(5, 3, queue).produce(4).snapshot(0).read(0, 4).commit(0)
        p.produce(4).snapshot(1).read(1, 4).commit(1).produce(3).snapshot(2).read(2, 3)
        s[tag + "_stale_over_after_wrap"] = p.commit(0).commit(2).commit(1)
        p = RingProg(3, 2, queue)
        for _ in range(5):
            p.produce(2).snapshot(0).snapshot(1).read(0, 1).read(1, 2).commit(1).commit(0)
        s[tag + "_late_commit_behind"] = p
        p = RingProg(8, 4, queue).produce(6)
        for c in range(4):
            p.snapshot(c).read(c, c + 1).commit(c)
        s[tag + "_four_consumers"] = p.arbitrary(7, 1).arbitrary(3, 3).arbitrary(2, 2)
        p = RingProg(2, 1, queue).produce(3).snapshot(0).read(0, 2).commit(0).resync(0)
        s[tag + "_two_slots"] = p.read(0, 1).commit(0).produce(2).snapshot(0).read(0, 2).commit(0)
    p = RingProg(6, 2, True).produce(10, ready_ids=(1, 1, 2, 2, 3), to_ring=False)
    s["queue_get_events_copy_failed"] = p.snapshot(0).read(0, 6).commit(0).produce(4, to_ring=False)
    return s


def write(target, seeds, randoms):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name, prog in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(bytes(prog.b))
    rnd = random.Random(target)
    for i in range(randoms):
        with open(os.path.join(d, "random_%02d" % i), "wb") as f:
            f.write(bytes(rnd.randrange(256) for _ in range(rnd.randrange(16, 400))))


if __name__ == "__main__":
    write("kevent_ctl", ctl_seeds(), 16)
    write("ring_commit", ring_seeds(), 12)
