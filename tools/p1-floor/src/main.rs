//! An empty RESP server on io_uring: it answers `+OK` to every command and
//! does nothing else, to measure how little CPU per request a server can
//! use at `redis-benchmark -P 1` on this machine, against redis-server's
//! (issue 2's target: at most 0.7x Redis). One ring, multishot accept and
//! receive into provided buffers, deferred task work (the kernel runs the
//! completions when the loop waits, in one batch), one `io_uring_enter`
//! per loop for every connection's sends and re-provided buffers.
//!
//! Good enough for `redis-benchmark -P 1` only: it counts commands by their
//! `*` headers and does not parse them. An experiment, not a server.
use io_uring::{cqueue, opcode, types, IoUring};
use std::net::TcpListener;
use std::os::fd::AsRawFd;

const BUF: usize = 4096;
const NBUF: u16 = 1024;
const BGID: u16 = 7;
struct Conn { fd: i32, out: Vec<u8> }

fn count_cmds(b: &[u8]) -> usize {
    let mut n = if b.first() == Some(&b'*') { 1 } else { 0 };
    n += b.windows(3).filter(|w| w == b"\r\n*").count();
    n.max(1)
}
const ACCEPT: u64 = u64::MAX;
const PROVIDE: u64 = u64::MAX - 1;

fn main() {
    let port: u16 = std::env::args().nth(1).unwrap().parse().unwrap();
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let lfd = l.as_raw_fd();
    let mut ring: IoUring = IoUring::builder().setup_coop_taskrun().setup_single_issuer().setup_defer_taskrun().build(4096).unwrap();
    let mut pool = vec![0u8; BUF * NBUF as usize];
    let mut conns: Vec<Option<Conn>> = Vec::new();
    unsafe {
        ring.submission().push(&opcode::ProvideBuffers::new(pool.as_mut_ptr(), BUF as i32, NBUF, BGID, 0).build().user_data(PROVIDE)).unwrap();
        ring.submission().push(&opcode::AcceptMulti::new(types::Fd(lfd)).build().user_data(ACCEPT)).unwrap();
    }
    loop {
        ring.submit_and_wait(1).unwrap();
        let cqes: Vec<(u64, i32, u32)> = ring.completion().map(|c| (c.user_data(), c.result(), c.flags())).collect();
        for (ud, res, flags) in cqes {
            if ud == PROVIDE { if res < 0 { eprintln!("provide {res}"); } continue; }
            if ud == ACCEPT {
                if res >= 0 {
                    let one: i32 = 1;
                    unsafe { libc::setsockopt(res, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const _ as *const _, 4); }
                    let id = conns.len();
                    conns.push(Some(Conn { fd: res, out: Vec::new() }));
                    unsafe { ring.submission().push(&opcode::RecvMulti::new(types::Fd(res), BGID).build().user_data((id as u64) << 1)).unwrap(); }
                }
                continue;
            }
            let id = (ud >> 1) as usize;
            if ud & 1 == 1 { continue; }
            let Some(c) = conns[id].as_mut() else { continue };
            if res <= 0 {
                if res == -libc::ENOBUFS { eprintln!("enobufs"); }
                unsafe { libc::close(c.fd); }
                conns[id] = None; continue;
            }
            let bid = cqueue::buffer_select(flags).unwrap();
            let start = bid as usize * BUF;
            let n = count_cmds(&pool[start..start + res as usize]);
            c.out.clear();
            for _ in 0..n { c.out.extend_from_slice(b"+OK\r\n"); }
            unsafe {
                ring.submission().push(&opcode::Send::new(types::Fd(c.fd), c.out.as_ptr(), c.out.len() as u32).build().user_data(((id as u64) << 1) | 1)).unwrap();
                ring.submission().push(&opcode::ProvideBuffers::new(pool.as_mut_ptr().add(start), BUF as i32, 1, BGID, bid).build().user_data(PROVIDE)).unwrap();
                if !cqueue::more(flags) {
                    ring.submission().push(&opcode::RecvMulti::new(types::Fd(c.fd), BGID).build().user_data((id as u64) << 1)).unwrap();
                }
            }
        }
    }
}
