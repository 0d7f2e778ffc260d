use super::{Frames, close_frame};

/// A frame with `len` payload bytes, masked or not (lengths of 7, 16 and 64
/// bits by size).
fn frame(opcode: u8, fin: bool, masked: bool, len: usize) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&[1, 2, 3, 4]);
    }
    out.extend(std::iter::repeat_n(0x55, len));
    out
}

#[test]
fn boundaries_of_every_length_form_fed_a_byte_at_a_time() {
    for (len, masked) in [
        (0, false),
        (5, true),
        (125, false),
        (126, true),
        (70_000, false),
    ] {
        let bytes = frame(0x2, true, masked, len);
        let mut frames = Frames::default();
        for (i, b) in bytes.iter().enumerate() {
            assert!(!frames.lost());
            assert_eq!(frames.at_boundary(), i == 0, "len {len} at byte {i}");
            assert_eq!(frames.feed(std::slice::from_ref(b), false), 1);
        }
        assert!(frames.at_boundary(), "len {len}: boundary after the frame");
    }
}

#[test]
fn stops_at_the_first_boundary_when_asked() {
    let mut bytes = frame(0x1, false, true, 10);
    let first = bytes.len();
    bytes.extend(frame(0x0, true, true, 3));
    let mut frames = Frames::default();
    assert_eq!(frames.feed(&bytes, true), 0, "already at a boundary");
    assert_eq!(frames.feed(&bytes[..4], false), 4);
    assert_eq!(frames.feed(&bytes[4..], true), first - 4);
    assert!(frames.at_boundary());
    assert_eq!(frames.feed(&bytes[first..], false), bytes.len() - first);
    assert!(frames.at_boundary());
}

#[test]
fn a_close_frame_is_seen_once_whole() {
    let bytes = frame(0x8, true, true, 2);
    let mut frames = Frames::default();
    frames.feed(&bytes[..bytes.len() - 1], false);
    assert!(!frames.saw_close());
    frames.feed(&bytes[bytes.len() - 1..], false);
    assert!(frames.saw_close());
}

#[test]
fn what_is_not_websocket_framing_is_lost() {
    for bytes in [
        vec![0x83, 0x00],               // opcode 3 is reserved
        vec![0x09, 0x00],               // a fragmented ping
        vec![0x89, 126, 0x00, 0x80],    // a ping over 125 bytes
        b"GET / HTTP/1.1\r\n".to_vec(), // plain text
    ] {
        let mut frames = Frames::default();
        frames.feed(&bytes, false);
        assert!(frames.lost(), "{bytes:?}");
        assert!(!frames.at_boundary());
    }
}

#[test]
fn the_close_frame_says_1001_masked_or_not() {
    let plain = close_frame(None);
    assert_eq!(plain[0], 0x88);
    assert_eq!(plain[1] as usize, plain.len() - 2);
    assert_eq!(&plain[2..4], &1001u16.to_be_bytes());
    assert_eq!(&plain[4..], b"going away");

    let key = [0xA1, 0xB2, 0xC3, 0xD4];
    let masked = close_frame(Some(key));
    assert_eq!(masked[1], 0x80 | (plain.len() - 2) as u8);
    assert_eq!(&masked[2..6], &key);
    let unmasked: Vec<u8> = masked[6..]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect();
    assert_eq!(unmasked, plain[2..]);
    // Both are one whole close frame to the tracker.
    for bytes in [plain, masked] {
        let mut frames = Frames::default();
        assert_eq!(frames.feed(&bytes, false), bytes.len());
        assert!(frames.saw_close() && frames.at_boundary());
    }
}
