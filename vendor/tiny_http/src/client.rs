use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read};

use std::net::SocketAddr;
use std::str::FromStr;

use crate::common::{HTTPVersion, Method};
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // redis-proxy patch 5: the socket, for writing without blocking
    send_handle: Option<crate::request::SendHandle>,

    // redis-proxy patch 20: answers to refused heads, counted by status;
    // and whether bytes of a head had come when a read of it failed (a
    // timeout before any is an idle connection closed, not a request).
    head_errors: std::sync::Arc<crate::HeadErrors>,
    head_begun: bool,
}

// redis-proxy patch 2: bound what one request's head can make us buffer.
const MAX_LINE_LEN: usize = 32 * 1024;
const MAX_HEADERS_LEN: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
const LINE_TOO_LONG: &str = "line too long";

// redis-proxy patch 17: lines end with CRLF, and only there.
const BARE_LINE_END: &str =
    "a line of the head ends with a bare LF or holds a bare CR: HTTP/1 lines end with CRLF";

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    RequestLineTooLong,
    HeadersTooLarge(HTTPVersion),
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    /// redis-proxy patches 10-12: a head that is answered with this status
    /// and message, then the connection closed
    Refused(HTTPVersion, u16, &'static str),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        head_errors: std::sync::Arc<crate::HeadErrors>, // redis-proxy patch 20
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let send_handle = write_socket.send_handle();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            send_handle,
            head_errors, // redis-proxy patch 20
            head_begun: false,
        }
    }

    /// redis-proxy patch 5: the socket responses are written to, for writing
    /// without blocking; None for HTTPS (bytes must go through TLS) and Unix
    /// sockets.
    pub(crate) fn send_handle(&self) -> Option<crate::request::SendHandle> {
        self.send_handle.clone()
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    fn read_next_line(&mut self) -> IoResult<AsciiString> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            let byte = self.next_header_source.by_ref().bytes().next();

            let byte = match byte {
                // redis-proxy patch 20: whether this line had begun (error path only).
                Some(Err(e)) => {
                    self.head_begun = !buf.is_empty();
                    return Err(e);
                }
                Some(b) => b?,
                None => return Err(IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF")),
            };

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                return AsciiString::from_ascii(buf)
                    .map_err(|_| IoError::new(ErrorKind::InvalidInput, "Header is not in ASCII"));
            }

            // redis-proxy patch 17: a bare LF or CR is not a line end here (400).
            if byte == b'\n' || prev_byte_was_cr {
                return Err(IoError::new(ErrorKind::InvalidInput, BARE_LINE_END));
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
            if buf.len() > MAX_LINE_LEN {
                return Err(IoError::new(ErrorKind::InvalidData, LINE_TOO_LONG));
            }
        }
    }

    /// redis-proxy patch 22: the request line, past up to
    /// `MAX_EMPTY_LINES` empty lines before it (RFC 9112 section 2.2: a
    /// server SHOULD ignore at least one, as some clients send a CRLF after
    /// a body); one more is refused. Each is read under the socket's own
    /// timeout like any byte of the head: a slow client holds its connection's
    /// thread (never a worker) no longer by them than by four more bytes of
    /// its request line.
    fn read_request_line(&mut self) -> IoResult<AsciiString> {
        for _ in 0..MAX_EMPTY_LINES {
            let line = self.read_next_line()?;
            if !line.is_empty() {
                return Ok(line);
            }
        }
        match self.read_next_line()? {
            line if line.is_empty() => Err(IoError::new(ErrorKind::InvalidInput, EMPTY_LINES)),
            line => Ok(line),
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self.read_request_line().map_err(|e| match e.kind() {
                    ErrorKind::InvalidData => ReadError::RequestLineTooLong,
                    // redis-proxy patch 22: too many empty lines before it.
                    ErrorKind::InvalidInput if empty_lines(&e) => {
                        ReadError::Refused(HTTPVersion(1, 1), 400, EMPTY_LINES)
                    }
                    // redis-proxy patch 17: a bare LF or CR, answered and closed.
                    ErrorKind::InvalidInput if bare_line_end(&e) => {
                        ReadError::Refused(HTTPVersion(1, 1), 400, BARE_LINE_END)
                    }
                    // redis-proxy patch 12: answered, not dropped in silence.
                    ErrorKind::InvalidInput => ReadError::Refused(
                        HTTPVersion(1, 1),
                        400,
                        "request line is not ASCII (percent-encode the key)",
                    ),
                    _ => ReadError::ReadIoError(e),
                })?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                let mut headers_len = 0;
                loop {
                    // redis-proxy patch 20: a failed header line is of a head begun.
                    let line = self.read_next_line().inspect_err(|_| self.head_begun = true);
                    let line = line.map_err(|e| match e.kind() {
                        ErrorKind::InvalidData => ReadError::HeadersTooLarge(version.clone()),
                        // redis-proxy patch 17: a bare LF or CR, answered and closed.
                        ErrorKind::InvalidInput if bare_line_end(&e) => {
                            ReadError::Refused(version.clone(), 400, BARE_LINE_END)
                        }
                        // redis-proxy patch 12: answered, not dropped in silence.
                        ErrorKind::InvalidInput => {
                            ReadError::Refused(version.clone(), 400, "header line is not ASCII")
                        }
                        _ => ReadError::ReadIoError(e),
                    })?;

                    if line.is_empty() {
                        break;
                    };
                    headers_len += line.len();
                    if headers_len > MAX_HEADERS_LEN || headers.len() >= MAX_HEADERS {
                        return Err(ReadError::HeadersTooLarge(version));
                    }
                    // redis-proxy patch 18: an obs-fold (or whitespace before the
                    // first header) is refused, RFC 9112 sections 5.2 and 2.2.
                    if line.as_str().starts_with([' ', '\t']) {
                        return Err(ReadError::Refused(version, 400, OBS_FOLD));
                    }
                    // redis-proxy patch 19: a field name is a token, RFC 9112 section 5.1.
                    if let Some((name, _)) = line.as_str().split_once(':') {
                        if !is_token(name) {
                            return Err(ReadError::Refused(version, 400, BAD_FIELD_NAME));
                        }
                    }
                    // redis-proxy patch 21: no control byte but HTAB in a field value,
                    // RFC 9110 section 5.5 (the name is a token, CR and LF refused).
                    if line.as_bytes().iter().any(is_control_byte) {
                        return Err(ReadError::Refused(version, 400, CONTROL_BYTE));
                    }
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            // redis-proxy patch 11: nothing after a head whose body cannot be
            // framed exactly is ever read as a request.
            check_framing(&headers, &version)?;

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            let rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(400, "malformed request line");
                    self.head_errors.add(400); // redis-proxy patch 20
                    response // redis-proxy patch 12: says it closes
                        .raw_print(writer, HTTPVersion(1, 1), &[closing()], false, None)
                        .ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::RequestLineTooLong) => {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(414, "request line too long (max 32768 bytes)");
                    self.head_errors.add(414); // redis-proxy patch 20
                    response // redis-proxy patch 12: says it closes
                        .raw_print(writer, HTTPVersion(1, 1), &[closing()], false, None)
                        .ok();
                    return None;
                }

                Err(ReadError::HeadersTooLarge(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(
                        431,
                        "request headers too large (max 65536 bytes, 100 lines, 32768 bytes a line)",
                    );
                    self.head_errors.add(431); // redis-proxy patch 20
                    // redis-proxy patch 12: says it closes.
                    response.raw_print(writer, ver, &[closing()], false, None).ok();
                    return None;
                }

                Err(ReadError::WrongHeader(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(400, "malformed header line");
                    self.head_errors.add(400); // redis-proxy patch 20
                    // redis-proxy patch 12: says it closes.
                    response.raw_print(writer, ver, &[closing()], false, None).ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                // redis-proxy patch 8: a receive timeout (SO_RCVTIMEO) shows
                // as WouldBlock on Linux, not TimedOut; both are a 408.
                Err(ReadError::ReadIoError(ref err))
                    if matches!(err.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
                {
                    // request timeout
                    let writer = self.sink.next().unwrap();
                    let response = json_error(408, "no complete request within the idle timeout");
                    // redis-proxy patch 20: a head cut short is a request answered;
                    // an idle connection closed (no byte of a request) is not.
                    if self.head_begun {
                        self.head_errors.add(408);
                    }
                    response // redis-proxy patch 12: says it closes
                        .raw_print(writer, HTTPVersion(1, 1), &[closing()], false, None)
                        .ok();
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(417, "unsupported Expect header");
                    self.head_errors.add(417); // redis-proxy patch 20
                    // redis-proxy patch 12: with its body (its length was sent).
                    response.raw_print(writer, ver, &[closing()], false, None).ok();
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                // redis-proxy patches 10-12: answered, then closed.
                Err(ReadError::Refused(ver, status, message)) => {
                    let writer = self.sink.next().unwrap();
                    let response = json_error(status, message);
                    self.head_errors.add(status); // redis-proxy patch 20
                    response.raw_print(writer, ver, &[closing()], false, None).ok();
                    return None;
                }

                Err(ReadError::ReadIoError(_)) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            // (redis-proxy patch 10: no longer reached: `parse_http_version`
            // refuses these before a request is made, which is what stops
            // this 505 waiting forever behind the request's own writer.)
            if *rq.http_version() > (1, 1) {
                let writer = self.sink.next().unwrap();
                let response = json_error(505, "only HTTP/1.0 and HTTP/1.1 are supported");
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                continue;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

/// redis-proxy patch 8: the errors the server answers by itself carry a
/// JSON body naming the problem, as every error of the proxy's does.
/// `message` is a literal with nothing to escape.
fn json_error(status: u16, message: &str) -> crate::Response<std::io::Cursor<Vec<u8>>> {
    use crate::{Header, Response, StatusCode};
    let body = format!("{{\"error\":\"{}\"}}", message).into_bytes();
    let len = body.len();
    Response::new(
        StatusCode(status),
        vec![Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap()],
        std::io::Cursor::new(body),
        Some(len),
        None,
    )
}

/// redis-proxy patch 12: passed as the request's headers when printing an
/// error the server answers itself, so the answer says `Connection: close`
/// (patch 6), as the connection closes after it.
fn closing() -> crate::Header {
    crate::Header::from_bytes(&b"Connection"[..], &b"close"[..]).unwrap()
}

/// redis-proxy patch 11: a request body is taken only when its length is
/// known exactly and it is small enough to be read by the connection's
/// thread before the request is queued (upstream reads a body up to 1 KiB
/// so): this server takes no request body, and a longer one would be
/// drained by the worker that drops the request, waiting on the client.
/// Anything else is answered 400 (invalid framing, RFC 9112 section 6.3)
/// or 413 and the connection closed, so nothing after the head is ever
/// read as a request.
fn check_framing(headers: &[crate::Header], version: &HTTPVersion) -> Result<(), ReadError> {
    const MAX_BODY: usize = 1024;
    let refuse = |status, message| Err(ReadError::Refused(version.clone(), status, message));
    if headers.iter().any(|h| h.field.equiv("Transfer-Encoding")) {
        return refuse(
            400,
            "Transfer-Encoding in a request is not supported: send no body, or a Content-Length",
        );
    }
    let mut length = None;
    for header in headers.iter().filter(|h| h.field.equiv("Content-Length")) {
        let value = header.value.as_str();
        let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        match (digits, value.parse::<usize>().ok(), length) {
            (true, Some(n), None) => length = Some(n),
            (true, Some(n), Some(m)) if n == m => {}
            (true, None, _) => return refuse(413, "request body too large (max 1024 bytes)"),
            (true, Some(_), Some(_)) => return refuse(400, "conflicting Content-Length headers"),
            (false, _, _) => return refuse(400, "invalid Content-Length header"),
        }
    }
    let continues = headers
        .iter()
        .any(|h| h.field.equiv("Expect") && h.value.as_str().eq_ignore_ascii_case("100-continue"));
    match length {
        Some(n) if n > MAX_BODY => refuse(413, "request body too large (max 1024 bytes)"),
        Some(n) if n > 0 && continues => {
            refuse(413, "a request body is not taken after Expect: 100-continue")
        }
        _ => Ok(()),
    }
}

/// redis-proxy patch 17: whether `e` is `read_next_line`'s refusal of a bare
/// LF or CR (the same kind as a byte that is not ASCII, another message).
fn bare_line_end(e: &IoError) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.to_string() == BARE_LINE_END)
}

/// redis-proxy patch 18: a header line that starts with a space or tab.
const OBS_FOLD: &str =
    "a header line starts with a space or tab (obs-fold is not accepted, RFC 9112 section 5.2)";

/// redis-proxy patch 19: a header line whose name is empty or is not a token.
const BAD_FIELD_NAME: &str =
    "a header name is empty or holds a space or another byte a name cannot have (RFC 9112 section 5.1)";

/// redis-proxy patch 21: a header value that holds a control byte.
const CONTROL_BYTE: &str =
    "a header value holds a control byte (NUL, or another but HTAB; RFC 9110 section 5.5)";

/// redis-proxy patch 21: a control byte (RFC 5234's CTL) other than HTAB.
fn is_control_byte(b: &u8) -> bool {
    *b != b'\t' && (*b < 0x20 || *b == 0x7f)
}

/// redis-proxy patch 23: a request line that holds a control byte.
const CONTROL_IN_LINE: &str =
    "the request line holds a control byte (NUL, HTAB or another; RFC 9112 section 3)";

/// redis-proxy patch 22: how many empty lines before a request line are
/// ignored, and the refusal of one more.
const MAX_EMPTY_LINES: usize = 4;
const EMPTY_LINES: &str = "more than 4 empty lines before the request line (RFC 9112 section 2.2)";

/// redis-proxy patch 22: whether `e` is `read_request_line`'s refusal of
/// too many empty lines.
fn empty_lines(e: &IoError) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.to_string() == EMPTY_LINES)
}

/// redis-proxy patch 19: whether `name` is a token (RFC 9110 section 5.6.2),
/// as a field name must be: not empty, no whitespace, no delimiter.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses a "HTTP/1.1" string.
///
/// redis-proxy patch 10: HTTP/1.x above 1.1 is served as 1.1 (RFC 9110
/// section 2.5); any other major version (HTTP/0.9, HTTP/2.0, HTTP/3.0) is
/// refused with 505 before a request is made of it.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let rest = version.strip_prefix("HTTP/").ok_or(ReadError::WrongRequestLine)?;
    match rest.split_once('.').unwrap_or((rest, "")) {
        ("1", "0") => Ok(HTTPVersion(1, 0)),
        ("1", minor) if digits(minor) => Ok(HTTPVersion(1, 1)),
        (major, _) if major != "1" && digits(major) => Err(ReadError::Refused(
            HTTPVersion(1, 1),
            505,
            "only HTTP/1.0 and HTTP/1.1 are supported",
        )),
        _ => Err(ReadError::WrongRequestLine),
    }
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    // redis-proxy patch 23: no control byte (HTAB included) in a request line.
    if line.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(ReadError::Refused(HTTPVersion(1, 1), 400, CONTROL_IN_LINE));
    }
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    // redis-proxy patch 10: a version refused (505) is not a malformed line.
    let version = match parts.next().map(parse_http_version) {
        Some(Err(refused @ ReadError::Refused(..))) => return Err(refused),
        version => version.and_then(Result::ok),
    };

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
