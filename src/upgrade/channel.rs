//! A message channel that carries file descriptors: length-prefixed JSON
//! frames over a Unix stream, each with the descriptors it names attached
//! (SCM_RIGHTS). What one daemon hands the next (listening sockets, client
//! connections, the state lock) travels on it.
//!
//! A frame is `u32 length | u16 descriptor count | JSON`, sent with one
//! `sendmsg` whose ancillary data holds its descriptors. The kernel attaches
//! them to the frame's first byte, so a reader that collects descriptors in
//! arrival order has every frame's descriptors by the time its bytes are in.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;

/// Descriptors one frame may carry (the kernel's SCM_MAX_FD).
pub const MAX_FDS: usize = 253;
/// Largest frame body accepted.
const MAX_FRAME: usize = 1 << 20;
const HEADER: usize = 6;

/// One end of a descriptor-passing channel.
pub struct FdChannel {
    stream: UnixStream,
    /// Bytes read and not yet parsed into a frame.
    bytes: Vec<u8>,
    /// Descriptors received and not yet handed out with their frame.
    fds: VecDeque<OwnedFd>,
}

impl FdChannel {
    pub fn new(stream: UnixStream) -> FdChannel {
        FdChannel {
            stream,
            bytes: Vec::new(),
            fds: VecDeque::new(),
        }
    }

    /// Sends `message` with `fds` attached.
    pub async fn send<T: Serialize>(
        &mut self,
        message: &T,
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<()> {
        if fds.len() > MAX_FDS {
            return Err(io::Error::other(format!(
                "{} descriptors in one message (at most {MAX_FDS})",
                fds.len()
            )));
        }
        let body = serde_json::to_vec(message).map_err(io::Error::other)?;
        let len = u32::try_from(body.len()).map_err(io::Error::other)?;
        let mut frame = Vec::with_capacity(HEADER + body.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&(fds.len() as u16).to_be_bytes());
        frame.extend_from_slice(&body);
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let sent = self
            .stream
            .async_io(Interest::WRITABLE, || {
                let mut control = SendAncillaryBuffer::new(&mut space);
                if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
                    return Err(io::Error::other("no room for the descriptors"));
                }
                rustix::net::sendmsg(
                    self.stream.as_fd(),
                    &[IoSlice::new(&frame)],
                    &mut control,
                    SendFlags::NOSIGNAL,
                )
                .map_err(io::Error::from)
            })
            .await?;
        // The descriptors went with the first byte; the rest is plain bytes.
        self.stream.write_all(&frame[sent..]).await
    }

    /// The next message and its descriptors; None when the other end closed
    /// between two messages.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
        loop {
            if let Some(frame) = self.frame()? {
                return Ok(Some(frame));
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let (read, fds) = self
                .stream
                .async_io(Interest::READABLE, || {
                    let mut control = RecvAncillaryBuffer::new(&mut space);
                    let got = rustix::net::recvmsg(
                        self.stream.as_fd(),
                        &mut [IoSliceMut::new(&mut chunk)],
                        &mut control,
                        RecvFlags::CMSG_CLOEXEC,
                    )
                    .map_err(io::Error::from)?;
                    let mut fds = Vec::new();
                    for message in control.drain() {
                        if let RecvAncillaryMessage::ScmRights(received) = message {
                            fds.extend(received);
                        }
                    }
                    Ok((got.bytes, fds))
                })
                .await?;
            self.fds.extend(fds);
            if read == 0 {
                if self.bytes.is_empty() {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.bytes.extend_from_slice(&chunk[..read]);
        }
    }

    /// A whole frame from the bytes read so far, if there is one.
    fn frame<T: DeserializeOwned>(&mut self) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
        if self.bytes.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]])
            as usize;
        let count = u16::from_be_bytes([self.bytes[4], self.bytes[5]]) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::other(format!(
                "a {len}-byte message (at most {MAX_FRAME})"
            )));
        }
        if self.bytes.len() < HEADER + len {
            return Ok(None);
        }
        if self.fds.len() < count {
            return Err(io::Error::other(format!(
                "a message names {count} descriptors, {} arrived",
                self.fds.len()
            )));
        }
        let message =
            serde_json::from_slice(&self.bytes[HEADER..HEADER + len]).map_err(io::Error::other)?;
        self.bytes.drain(..HEADER + len);
        let fds = self.fds.drain(..count).collect();
        Ok(Some((message, fds)))
    }
}

#[cfg(test)]
mod tests;
