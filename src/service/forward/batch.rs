//! Requests bound for Redis, owned so they can move to a worker: their
//! frames back to back (what is written to Redis) and where each
//! argument lies (what the command table reads keys from).

use std::ops::Range;

/// Consecutive requests of one client (or several) to send in one write.
#[derive(Debug, Default)]
pub struct Batch {
    /// The requests as RESP arrays, back to back.
    bytes: Vec<u8>,
    /// Per request: where its frame ends in `bytes` and its arguments end
    /// in `args`, and whether Redis queues it (inside MULTI) rather than
    /// runs it.
    ends: Vec<(usize, usize, bool)>,
    /// Every request's argument ranges in `bytes`, in order.
    args: Vec<Range<usize>>,
}

impl Batch {
    /// An empty batch with room for about `bytes` of requests, so that
    /// pushing a client's pipeline does not grow it step by step.
    pub fn with_capacity(bytes: usize) -> Batch {
        let mut batch = Batch::default();
        batch.reserve(bytes);
        batch
    }

    /// Room for about `bytes` more of requests: an argument takes at least
    /// seven bytes of a frame, a request at least fifteen; a pipeline of
    /// short writes (SET, HSET, LPUSH: a dozen bytes an argument) then fits
    /// without growing a list on the way.
    pub fn reserve(&mut self, bytes: usize) {
        self.bytes.reserve(bytes);
        self.args.reserve((bytes / 12).clamp(48, 4096));
        self.ends.reserve((bytes / 40).clamp(16, 1024));
    }

    /// Emptied, its room kept, to be filled again: the event loop reuses
    /// the batches whose replies came in rather than allocate three lists
    /// for each new one.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.args.clear();
        self.ends.clear();
    }

    /// The bytes it can hold without growing (a batch kept for reuse is
    /// not a large one).
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Appends one request (the command name first), encoded as a RESP
    /// array whatever form the client sent it in; `queued`: sent inside a
    /// transaction, so Redis queues it until EXEC.
    pub fn push(&mut self, argv: &[&[u8]], queued: bool) {
        let mut number = itoa::Buffer::new();
        self.bytes.push(b'*');
        self.bytes
            .extend_from_slice(number.format(argv.len()).as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
        for arg in argv {
            self.bytes.push(b'$');
            self.bytes
                .extend_from_slice(number.format(arg.len()).as_bytes());
            self.bytes.extend_from_slice(b"\r\n");
            let start = self.bytes.len();
            self.bytes.extend_from_slice(arg);
            self.args.push(start..self.bytes.len());
            self.bytes.extend_from_slice(b"\r\n");
        }
        self.ends.push((self.bytes.len(), self.args.len(), queued));
    }

    /// Appends one request the client sent as `frame`, its arguments
    /// `argv` (slices of it): the frame's bytes copied as they are when
    /// they are what [`Batch::push`] would write (a RESP array with every
    /// length in its shortest form: then no other bytes have its length),
    /// else encoded by `push` (an inline command, a length such as `$03`).
    pub fn push_sent(&mut self, frame: &[u8], argv: &[&[u8]], queued: bool) {
        let header = 3 + decimal_len(argv.len());
        let encoded = argv.iter().fold(header, |total, arg| {
            total + 5 + decimal_len(arg.len()) + arg.len()
        });
        if frame.len() != encoded || frame.first() != Some(&b'*') {
            return self.push(argv, queued);
        }
        let base = self.bytes.len();
        self.bytes.extend_from_slice(frame);
        let mut at = base + header;
        for arg in argv {
            at += 3 + decimal_len(arg.len());
            self.args.push(at..at + arg.len());
            at += arg.len() + 2;
        }
        self.ends.push((self.bytes.len(), self.args.len(), queued));
    }

    /// Appends every request of `other` (another client's batch, sent
    /// together with this one).
    pub fn append(&mut self, other: &Batch) {
        let (base, arg_base) = (self.bytes.len(), self.args.len());
        self.bytes.extend_from_slice(&other.bytes);
        self.args
            .extend(other.args.iter().map(|r| r.start + base..r.end + base));
        self.ends.extend(
            other
                .ends
                .iter()
                .map(|&(frame, args, queued)| (frame + base, args + arg_base, queued)),
        );
    }

    /// How many requests it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes it holds, to bound a batch.
    pub fn bytes_len(&self) -> usize {
        self.bytes.len()
    }

    /// Every request's frame, back to back.
    pub fn frames(&self) -> &[u8] {
        &self.bytes
    }

    /// Request `i`'s frame.
    pub fn frame(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1].0 };
        &self.bytes[start..self.ends[i].0]
    }

    /// Whether request `i` is queued in a transaction rather than run.
    pub fn queued(&self, i: usize) -> bool {
        self.ends[i].2
    }

    /// Request `i`'s arguments (the command name first), into `out`.
    pub fn argv<'a>(&'a self, i: usize, out: &mut Vec<&'a [u8]>) {
        out.clear();
        out.extend(
            self.arg_ranges(i)
                .iter()
                .map(|range| &self.bytes[range.clone()]),
        );
    }

    /// Where request `i`'s arguments lie in [`Batch::frames`].
    pub fn arg_ranges(&self, i: usize) -> &[Range<usize>] {
        let start = if i == 0 { 0 } else { self.ends[i - 1].1 };
        &self.args[start..self.ends[i].1]
    }
}

/// How many digits `n` takes in decimal.
fn decimal_len(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(batch: &Batch) -> Vec<(Vec<Vec<u8>>, Vec<u8>)> {
        let mut argv = Vec::new();
        (0..batch.len())
            .map(|i| {
                batch.argv(i, &mut argv);
                let args = argv.iter().map(|arg| arg.to_vec()).collect();
                (args, batch.frame(i).to_vec())
            })
            .collect()
    }

    #[test]
    fn a_sent_frame_is_kept_when_canonical_and_encoded_otherwise() {
        let long = "v".repeat(1234);
        let sent: &[(&[u8], &[&[u8]])] = &[
            (
                b"*3\r\n$5\r\nLPUSH\r\n$1\r\nl\r\n$0\r\n\r\n",
                &[b"LPUSH", b"l", b""],
            ),
            (b"*2\r\n$03\r\nGET\r\n$1\r\nk\r\n", &[b"GET", b"k"]),
            (b"*02\r\n$3\r\nGET\r\n$1\r\nk\r\n", &[b"GET", b"k"]),
            (b"GET k\r\n", &[b"GET", b"k"]),
        ];
        let (mut kept, mut encoded) = (Batch::default(), Batch::default());
        for (frame, argv) in sent {
            kept.push_sent(frame, argv, false);
            encoded.push(argv, false);
        }
        let frame = format!("*2\r\n$3\r\nSET\r\n$1234\r\n{long}\r\n");
        kept.push_sent(frame.as_bytes(), &[b"SET", long.as_bytes()], true);
        encoded.push(&[b"SET", long.as_bytes()], true);
        assert_eq!(requests(&kept), requests(&encoded));
        assert_eq!(kept.frames(), encoded.frames());
        assert!(kept.queued(4) && !kept.queued(0));
    }
}
