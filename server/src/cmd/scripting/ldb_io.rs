//! The debugger's own I/O on the client's socket, from inside a running
//! script (Redis's `connBlock` + `connRead` / `connWrite` in `eval.c`): the
//! socket stays non-blocking for tokio, so each call waits with `poll`.

use std::sync::atomic::Ordering;

use crate::client::ClientHandle;

/// How long a write may wait for the client to read (Redis's
/// `connSendTimeout(ldb.conn, 5000)`).
const SEND_TIMEOUT_MS: i32 = 5000;
/// How often a read looks whether the client was killed meanwhile.
const KILL_CHECK_MS: i32 = 100;

fn wait(fd: i32, events: i16, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

/// Writes all of `bytes`; false when the client does not take them.
pub fn write_all(fd: i32, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for its length.
        let n = unsafe { libc::write(fd, bytes.as_ptr() as *const _, bytes.len()) };
        if n > 0 {
            bytes = bytes.get(n as usize..).unwrap_or_default();
            continue;
        }
        let err = std::io::Error::last_os_error().kind();
        if n < 0 && err == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n < 0
            && err == std::io::ErrorKind::WouldBlock
            && wait(fd, libc::POLLOUT, SEND_TIMEOUT_MS)
        {
            continue;
        }
        return false;
    }
    true
}

/// Reads what the client sent (up to 1 KiB, as Redis); `None` once the
/// connection is closed, failed, or the client was killed.
pub fn read_some(fd: i32, handle: &ClientHandle) -> Option<Vec<u8>> {
    let mut buf = [0u8; 1024];
    loop {
        if handle.killed.load(Ordering::Relaxed) {
            return None;
        }
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut _, buf.len()) };
        if n > 0 {
            return buf.get(..n as usize).map(<[u8]>::to_vec);
        }
        if n == 0 {
            return None;
        }
        match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::Interrupted => {}
            std::io::ErrorKind::WouldBlock => {
                wait(fd, libc::POLLIN, KILL_CHECK_MS);
            }
            _ => return None,
        }
    }
}
