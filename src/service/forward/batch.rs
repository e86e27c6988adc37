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
    /// in `args`, whether Redis queues it (inside MULTI) rather than runs
    /// it, and whether its name is known to be the previous request's
    /// (the same bytes).
    ends: Vec<(usize, usize, bool, bool)>,
    /// Every request's argument ranges in `bytes`, in order.
    args: Vec<Range<usize>>,
    /// Its last request is the WATCH that began watching keys (see
    /// [`Batch::ends_with_first_watch`]).
    first_watch: bool,
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
        self.first_watch = false;
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
        self.ends
            .push((self.bytes.len(), self.args.len(), queued, false));
    }

    /// Appends one request the client sent as `frame`, as the RESP
    /// parser (`resp::parse`) read it: its arguments `argv`, lying at
    /// `ranges` of `frame`. An array is copied as it came, its arguments
    /// where the parser found them: the parser takes only arrays whose
    /// lengths are in their shortest form (as Redis, it refuses `$03` or
    /// `*02`), so the frame is what [`Batch::push`] would write, without
    /// encoding it again. An inline command is encoded by `push`.
    /// `repeat`: its name is the same bytes as the last request pushed
    /// (which routing then need not compare: [`Batch::repeats`]).
    #[inline]
    pub fn push_parsed(
        &mut self,
        frame: &[u8],
        ranges: &[Range<usize>],
        argv: &[&[u8]],
        (queued, repeat): (bool, bool),
    ) {
        if frame.first() != Some(&b'*') {
            return self.push(argv, queued);
        }
        let repeat = repeat && !self.ends.is_empty();
        let base = self.bytes.len();
        self.bytes.extend_from_slice(frame);
        // A plain loop: `extend` with a closure was a call of its own here.
        self.args.reserve(ranges.len());
        for range in ranges {
            self.args.push(base + range.start..base + range.end);
        }
        let end = (self.bytes.len(), self.args.len(), queued, repeat);
        self.ends.push(end);
    }

    /// Appends every request of `other` (another client's batch, sent
    /// together with this one).
    pub fn append(&mut self, other: &Batch) {
        let (base, arg_base) = (self.bytes.len(), self.args.len());
        self.bytes.extend_from_slice(&other.bytes);
        self.args
            .extend(other.args.iter().map(|r| r.start + base..r.end + base));
        // Its first request's name is not compared with this one's last.
        let ends = other.ends.iter().enumerate().map(|(i, &end)| {
            let (frame, args, queued, repeat) = end;
            (frame + base, args + arg_base, queued, repeat && i > 0)
        });
        self.ends.extend(ends);
    }

    /// Says its last request is a WATCH sent while no key was watched:
    /// the connection it goes on is the client's to hold only if that
    /// WATCH succeeds. Redis keeps nothing of a WATCH it refused (-ASK,
    /// -NOPERM, ...), nor of one the proxy refused (-CROSSSLOT), so after
    /// either the client holds no connection, as after none at all.
    pub fn mark_first_watch(&mut self) {
        self.first_watch = true;
    }

    /// Whether [`Batch::mark_first_watch`] was called since it was made or
    /// cleared.
    pub fn ends_with_first_watch(&self) -> bool {
        self.first_watch
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

    /// Whether request `i`'s name is known to be the same bytes as
    /// request `i - 1`'s (false: not known).
    pub fn repeats(&self, i: usize) -> bool {
        self.ends[i].3
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
    fn a_parsed_frame_is_kept_as_push_would_write_it() {
        let long = format!("*2\r\n$3\r\nSET\r\n$1234\r\n{}\r\n", "v".repeat(1234));
        let sent: &[&[u8]] = &[
            b"*3\r\n$5\r\nLPUSH\r\n$1\r\nl\r\n$0\r\n\r\n",
            b"GET k\r\n",
            b"SET k \"a b\"\r\n",
            long.as_bytes(),
            b"*1\r\n$0\r\n\r\n",
        ];
        let (mut kept, mut encoded) = (Batch::default(), Batch::default());
        for (i, frame) in sent.iter().enumerate() {
            let mut frame = frame.to_vec();
            let request = crate::resp::parse::parse(&mut frame)
                .expect("valid")
                .expect("whole");
            assert_eq!(request.len, frame.len());
            let argv: Vec<&[u8]> = request.args.iter().map(|r| &frame[r.clone()]).collect();
            kept.push_parsed(&frame, &request.args, &argv, (i == 3, true));
            encoded.push(&argv, i == 3);
        }
        assert_eq!(requests(&kept), requests(&encoded));
        assert_eq!(kept.frames(), encoded.frames());
        assert!(kept.queued(3) && !kept.queued(0));
        // Pushed as repeats: the first is not one, nor an inline command.
        let repeats: Vec<bool> = (0..kept.len()).map(|i| kept.repeats(i)).collect();
        assert_eq!(repeats, [false, false, false, true, true]);
        let mut both = Batch::default();
        both.append(&kept);
        both.append(&kept);
        assert!(!both.repeats(5) && both.repeats(8));
    }
}
