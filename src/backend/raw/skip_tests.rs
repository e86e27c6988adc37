//! The skip on byte slices: it ends exactly where the framer says a reply
//! ends, however the bytes are cut into reads, and holds at most a read
//! and a header line's start while it goes.

use super::super::frame::tests::{EVERY_TYPE, NOT_RESP};
use super::super::frame::{Framer, MAX_NUMBER_LINE, TOO_LARGE};
use super::*;

/// Feeds `bytes` to `skip` in reads of `chunk` bytes, as the event loop's
/// connection does: each read appended to what was kept, the bytes done
/// with dropped. Returns how many bytes of `bytes` the skip took, and the
/// most it made the buffer keep between reads. Panics if it never ends.
fn feed(skip: &mut Skip, bytes: &[u8], chunk: usize) -> (usize, usize) {
    let (mut kept, mut taken, mut most) = (Vec::new(), 0, 0);
    for read in bytes.chunks(chunk) {
        kept.extend_from_slice(read);
        let (used, done) = skip.skip(&kept).expect("RESP");
        taken += used;
        kept.drain(..used);
        if done {
            return (taken, most);
        }
        most = most.max(kept.len());
    }
    panic!("the skip never ended: {taken} of {} bytes", bytes.len());
}

#[test]
fn a_big_bulk_split_over_many_reads_is_dropped_and_never_held() {
    let body = vec![b'x'; 1_000_000];
    let mut reply = format!("${}\r\n", body.len()).into_bytes();
    reply.extend_from_slice(&body);
    reply.extend_from_slice(b"\r\n");
    let end = reply.len();
    reply.extend_from_slice(b"+next\r\n");
    for chunk in [1, 2, 3, 7, 4096, 16 * 1024] {
        let mut skip = Skip::new(Vec::new(), 0);
        let (taken, most) = feed(&mut skip, &reply, chunk);
        assert_eq!(taken, end, "reads of {chunk}");
        assert!(most <= MAX_NUMBER_LINE, "reads of {chunk} kept {most}");
    }
}

#[test]
fn a_big_aggregate_of_many_small_elements_is_dropped_by_its_count() {
    let mut reply = b"*200000\r\n".to_vec();
    for i in 0..200_000 {
        let element: &[u8] = match i % 4 {
            0 => b"$3\r\nabc\r\n",
            1 => b":12345\r\n",
            2 => b"*2\r\n+a\r\n$-1\r\n",
            _ => b"%1\r\n$1\r\nk\r\n~1\r\n,1.5\r\n",
        };
        reply.extend_from_slice(element);
    }
    let end = reply.len();
    reply.extend_from_slice(b":1\r\n");
    for chunk in [5, 16 * 1024] {
        let mut skip = Skip::new(Vec::new(), 0);
        let (taken, most) = feed(&mut skip, &reply, chunk);
        assert_eq!(taken, end, "reads of {chunk}");
        assert!(most <= MAX_NUMBER_LINE, "reads of {chunk} kept {most}");
    }
}

#[test]
fn every_type_is_skipped_to_its_end_from_wherever_the_framer_gave_up() {
    for reply in EVERY_TYPE {
        let mut bytes = reply.to_vec();
        bytes.extend_from_slice(b"+next\r\n");
        for room in 0..reply.len() {
            let mut framer = Framer::default();
            let refused = framer.next_within(&bytes, room);
            assert_eq!(refused, Err(TOO_LARGE), "{reply:?} in {room}");
            let (pos, owed) = framer.give_up();
            for chunk in 1..=bytes.len() - pos {
                let mut skip = Skip::new(owed.clone(), 0);
                let (taken, _) = feed(&mut skip, &bytes[pos..], chunk);
                assert_eq!(pos + taken, reply.len(), "{reply:?}: {room}, {chunk}");
            }
            // The framer goes on afresh with the next reply.
            assert_eq!(framer.next(b"+next\r\n"), Ok(Some(7)));
        }
    }
}

#[test]
fn the_replies_after_the_refused_one_are_dropped_too() {
    let replies: &[u8] = b"$5\r\nhello\r\n*2\r\n:1\r\n:2\r\n+OK\r\n-ERR x\r\n+next\r\n";
    let mut skip = Skip::new(Vec::new(), 3);
    let (taken, _) = feed(&mut skip, replies, 4);
    assert_eq!(&replies[taken..], b"+next\r\n");
    // One inside an array still owing one element, then one more reply.
    let mut skip = Skip::new(vec![2], 1);
    let replies: &[u8] = b":1\r\n$1\r\na\r\n+OK\r\n:9\r\n";
    let (taken, _) = feed(&mut skip, replies, 3);
    assert_eq!(&replies[taken..], b":9\r\n");
}

#[test]
fn a_long_line_is_dropped_without_being_held() {
    let mut reply = b"-ERR ".to_vec();
    reply.extend(std::iter::repeat_n(b'e', 100_000));
    reply.extend_from_slice(b"\r\n+next\r\n");
    let mut skip = Skip::new(Vec::new(), 0);
    let (taken, most) = feed(&mut skip, &reply, 1000);
    assert_eq!(&reply[taken..], b"+next\r\n");
    assert!(most <= 1, "kept {most}");
}

#[test]
fn what_is_not_resp_is_refused_while_skipping() {
    let more: &[&[u8]] = &[
        b"+OK\n",
        b"*1\r\n$2\r\nab\r\r",
        b":1234567890123456789012345678",
    ];
    for reply in NOT_RESP.iter().chain(more) {
        let refused = (1..=reply.len()).all(|chunk| {
            let mut skip = Skip::new(Vec::new(), 0);
            let mut kept = Vec::new();
            reply.chunks(chunk).any(|read| {
                kept.extend_from_slice(read);
                match skip.skip(&kept) {
                    Ok((used, _)) => {
                        kept.drain(..used);
                        false
                    }
                    Err(_) => true,
                }
            })
        });
        assert!(refused, "{:?}", String::from_utf8_lossy(reply));
    }
    let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
    assert!(Skip::new(Vec::new(), 0).skip(&deep).is_err());
}
