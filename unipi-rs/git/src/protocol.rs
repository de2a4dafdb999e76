//! The upload-pack conversation, transport-neutral: capability and ref advertisements (v2 and
//! v0/v1), the requests this client sends, and the response to a fetch.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::error::{Error, sanitize};
use crate::oid::ObjectId;
use crate::pktline::{self, Pkt, err_message, trim_lf};
use crate::sideband::{self, Band};

/// The protocol version the server actually spoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolVersion {
    /// Protocol v0 or v1 (ref advertisement first).
    V0,
    /// Protocol v2 (capability advertisement, then commands).
    V2,
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtocolVersion::V0 => "v0",
            ProtocolVersion::V2 => "v2",
        })
    }
}

/// At most this many capability lines are accepted in a v2 advertisement.
const MAX_CAP_LINES: usize = 1024;

/// Capabilities of a v2 server that matter to this client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct V2Caps {
    pub agent: bool,
    pub ls_refs: bool,
    pub fetch: bool,
    pub fetch_shallow: bool,
    pub object_format: Option<String>,
    lines: usize,
}

impl V2Caps {
    fn add_line(&mut self, line: &[u8]) -> Result<(), Error> {
        self.lines += 1;
        if self.lines > MAX_CAP_LINES {
            return Err(Error::Protocol("too many capability lines".into()));
        }
        let (key, value) = match line.iter().position(|&b| b == b'=') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        match key {
            b"agent" => self.agent = true,
            b"ls-refs" => self.ls_refs = true,
            b"fetch" => {
                self.fetch = true;
                self.fetch_shallow = value
                    .map(|v| v.split(|&b| b == b' ').any(|f| f == b"shallow"))
                    .unwrap_or(false);
            }
            b"object-format" => self.object_format = value.map(sanitize),
            _ => {}
        }
        Ok(())
    }
}

/// Capabilities of a v0/v1 server (from the first ref line) that matter to this client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct V0Caps {
    pub side_band_64k: bool,
    pub thin_pack: bool,
    pub side_band: bool,
    pub ofs_delta: bool,
    pub shallow: bool,
    pub no_progress: bool,
    pub agent: bool,
    pub object_format: Option<String>,
    pub head_symref: Option<String>,
}

impl V0Caps {
    fn parse(caps: &[u8]) -> V0Caps {
        let mut c = V0Caps::default();
        for cap in trim_lf(caps).split(|&b| b == b' ') {
            match cap {
                b"side-band-64k" => c.side_band_64k = true,
                b"side-band" => c.side_band = true,
                b"thin-pack" => c.thin_pack = true,
                b"ofs-delta" => c.ofs_delta = true,
                b"shallow" => c.shallow = true,
                b"no-progress" => c.no_progress = true,
                _ if cap.starts_with(b"agent=") => c.agent = true,
                _ => {
                    if let Some(f) = cap.strip_prefix(b"object-format=") {
                        c.object_format = Some(sanitize(f));
                    } else if let Some(t) = cap.strip_prefix(b"symref=HEAD:") {
                        c.head_symref = Some(sanitize(t));
                    }
                }
            }
        }
        c
    }
}

/// What a ref resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefTarget {
    /// The ref's value.
    pub oid: ObjectId,
    /// The peeled value for annotated tags.
    pub peeled: Option<ObjectId>,
    /// For `HEAD`: the branch it points to, if the server said.
    pub symref: Option<String>,
}

impl RefTarget {
    /// The commit to fetch: the peeled value if there is one.
    pub fn commit(&self) -> ObjectId {
        self.peeled.unwrap_or(self.oid)
    }
}

/// The first answer of the server, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Advertisement {
    /// A v2 capability advertisement.
    V2(V2Caps),
    /// A v0/v1 ref advertisement; `wanted` is the wanted ref if it was advertised.
    V0 {
        caps: V0Caps,
        wanted: Option<RefTarget>,
    },
}

#[derive(Debug)]
enum DiscoveryState {
    Start,
    ServiceFlush,
    V2(V2Caps),
    V0 {
        caps: Option<V0Caps>,
        wanted: Option<RefTarget>,
        refs: usize,
    },
}

/// Parses the server's first answer (after connecting via git://, or the body of
/// `GET info/refs`) pkt-line by pkt-line.
#[derive(Debug)]
pub(crate) struct Discovery {
    state: DiscoveryState,
    wanted: String,
    max_refs: usize,
}

impl Discovery {
    /// A parser looking for `wanted` (`HEAD` or `refs/heads/<branch>`).
    pub fn new(wanted: &str, max_refs: usize) -> Self {
        Discovery {
            state: DiscoveryState::Start,
            wanted: String::from(wanted),
            max_refs,
        }
    }

    /// Feeds one pkt-line; returns the advertisement once it is complete.
    pub fn on_pkt(&mut self, pkt: Pkt<'_>) -> Result<Option<Advertisement>, Error> {
        if let Pkt::Data(d) = pkt
            && let Some(msg) = err_message(d)
        {
            return Err(Error::Remote(sanitize(msg)));
        }
        match (&mut self.state, pkt) {
            (DiscoveryState::Start, Pkt::Data(d)) => {
                let line = trim_lf(d);
                if line == b"# service=git-upload-pack" {
                    self.state = DiscoveryState::ServiceFlush;
                } else if line == b"version 2" {
                    self.state = DiscoveryState::V2(V2Caps::default());
                } else if line == b"version 1" {
                    self.state = DiscoveryState::V0 {
                        caps: None,
                        wanted: None,
                        refs: 0,
                    };
                } else {
                    self.state = DiscoveryState::V0 {
                        caps: None,
                        wanted: None,
                        refs: 0,
                    };
                    return self.on_pkt(pkt);
                }
                Ok(None)
            }
            (DiscoveryState::Start, Pkt::Flush) => Err(Error::Protocol(
                "remote sent an empty ref advertisement".into(),
            )),
            (DiscoveryState::ServiceFlush, Pkt::Flush) => {
                self.state = DiscoveryState::Start;
                Ok(None)
            }
            (DiscoveryState::V2(caps), Pkt::Data(d)) => {
                caps.add_line(trim_lf(d))?;
                Ok(None)
            }
            (DiscoveryState::V2(caps), Pkt::Flush) => Ok(Some(Advertisement::V2(caps.clone()))),
            (DiscoveryState::V0 { caps, wanted, refs }, Pkt::Data(d)) => {
                *refs += 1;
                if *refs > self.max_refs {
                    return Err(Error::TooManyRefs {
                        limit: self.max_refs,
                    });
                }
                let d = trim_lf(d);
                let d = if caps.is_none() {
                    let (line, c) = match d.iter().position(|&b| b == 0) {
                        Some(i) => (&d[..i], V0Caps::parse(&d[i + 1..])),
                        None => (d, V0Caps::default()),
                    };
                    *caps = Some(c);
                    line
                } else {
                    d
                };
                if d.starts_with(b"shallow ") {
                    return Ok(None);
                }
                let (oid, name) = split_oid(d)?;
                if let Some(base) = name.strip_suffix(b"^{}") {
                    if base == self.wanted.as_bytes()
                        && let Some(w) = wanted
                    {
                        w.peeled = Some(oid);
                    }
                } else if name == self.wanted.as_bytes() {
                    *wanted = Some(RefTarget {
                        oid,
                        peeled: None,
                        symref: None,
                    });
                }
                Ok(None)
            }
            (DiscoveryState::V0 { caps, wanted, .. }, Pkt::Flush) => {
                let caps = caps.take().unwrap_or_default();
                let mut wanted = wanted.take();
                if let Some(w) = &mut wanted
                    && self.wanted == "HEAD"
                {
                    w.symref.clone_from(&caps.head_symref);
                }
                Ok(Some(Advertisement::V0 { caps, wanted }))
            }
            _ => Err(Error::Protocol(
                "unexpected packet in the server's advertisement".into(),
            )),
        }
    }
}

/// Splits `<40 hex> <rest>`.
fn split_oid(line: &[u8]) -> Result<(ObjectId, &[u8]), Error> {
    let bad = || Error::Protocol(alloc::format!("malformed ref line '{}'", sanitize(line)));
    if line.len() < 42 || line[40] != b' ' {
        return Err(bad());
    }
    let oid = ObjectId::from_hex(&line[..40]).ok_or_else(bad)?;
    Ok((oid, &line[41..]))
}

/// Parses a v2 `ls-refs` answer, keeping only the wanted ref.
#[derive(Debug)]
pub(crate) struct LsRefs {
    wanted: String,
    found: Option<RefTarget>,
    refs: usize,
    max_refs: usize,
}

impl LsRefs {
    /// A parser looking for `wanted`.
    pub fn new(wanted: &str, max_refs: usize) -> Self {
        LsRefs {
            wanted: String::from(wanted),
            found: None,
            refs: 0,
            max_refs,
        }
    }

    /// Feeds one pkt-line; returns `Some(result)` at the terminating flush.
    pub fn on_pkt(&mut self, pkt: Pkt<'_>) -> Result<Option<Option<RefTarget>>, Error> {
        match pkt {
            Pkt::Data(d) => {
                if let Some(msg) = err_message(d) {
                    return Err(Error::Remote(sanitize(msg)));
                }
                self.refs += 1;
                if self.refs > self.max_refs {
                    return Err(Error::TooManyRefs {
                        limit: self.max_refs,
                    });
                }
                let line = trim_lf(d);
                if line.starts_with(b"unborn ") {
                    return Ok(None);
                }
                let (oid, rest) = split_oid(line)?;
                let mut parts = rest.split(|&b| b == b' ');
                let name = parts.next().unwrap_or_default();
                if name != self.wanted.as_bytes() {
                    return Ok(None);
                }
                let mut target = RefTarget {
                    oid,
                    peeled: None,
                    symref: None,
                };
                for attr in parts {
                    if let Some(t) = attr.strip_prefix(b"symref-target:") {
                        target.symref = Some(sanitize(t));
                    } else if let Some(p) = attr.strip_prefix(b"peeled:") {
                        target.peeled = Some(ObjectId::from_hex(p).ok_or_else(|| {
                            Error::Protocol("malformed peeled id in ls-refs".into())
                        })?);
                    }
                }
                self.found = Some(target);
                Ok(None)
            }
            Pkt::Flush => Ok(Some(self.found.take())),
            _ => Err(Error::Protocol(
                "unexpected packet in ls-refs answer".into(),
            )),
        }
    }
}

/// What the client asks for in its requests.
#[derive(Debug, Clone)]
pub(crate) struct RequestParams<'a> {
    /// User agent, already free of spaces and control characters.
    pub agent: &'a str,
    /// `HEAD` or `refs/heads/<branch>`.
    pub wanted_ref: &'a str,
    /// Ask the server not to send progress messages.
    pub no_progress: bool,
}

/// The first pkt-line on a git:// connection.
pub(crate) fn git_daemon_request(
    out: &mut Vec<u8>,
    path: &str,
    host: &str,
    v2: bool,
) -> Result<(), Error> {
    let mut line = Vec::new();
    line.extend_from_slice(b"git-upload-pack ");
    line.extend_from_slice(path.as_bytes());
    line.push(0);
    line.extend_from_slice(b"host=");
    line.extend_from_slice(host.as_bytes());
    line.push(0);
    if v2 {
        line.push(0);
        line.extend_from_slice(b"version=2");
        line.push(0);
    }
    pktline::encode(out, &line)
}

fn v2_header(out: &mut Vec<u8>, command: &[u8], caps: &V2Caps, agent: &str) -> Result<(), Error> {
    pktline::encode_parts(out, &[b"command=", command, b"\n"])?;
    if caps.agent {
        pktline::encode_parts(out, &[b"agent=", agent.as_bytes(), b"\n"])?;
    }
    if caps.object_format.is_some() {
        pktline::encode(out, b"object-format=sha1\n")?;
    }
    pktline::delim(out);
    Ok(())
}

/// A v2 `ls-refs` command asking only for the wanted ref.
pub(crate) fn v2_ls_refs(
    out: &mut Vec<u8>,
    caps: &V2Caps,
    p: &RequestParams<'_>,
) -> Result<(), Error> {
    v2_header(out, b"ls-refs", caps, p.agent)?;
    pktline::encode(out, b"symrefs\n")?;
    pktline::encode(out, b"peel\n")?;
    pktline::encode_parts(out, &[b"ref-prefix ", p.wanted_ref.as_bytes(), b"\n"])?;
    pktline::flush(out);
    Ok(())
}

/// A v2 `fetch` command for one commit, depth 1 when the server supports shallow. With
/// `have` (which needs shallow support) it asks only for what changed since that commit,
/// declared as the client's shallow boundary, and accepts a thin pack.
pub(crate) fn v2_fetch(
    out: &mut Vec<u8>,
    caps: &V2Caps,
    p: &RequestParams<'_>,
    want: ObjectId,
    have: Option<ObjectId>,
) -> Result<(), Error> {
    v2_header(out, b"fetch", caps, p.agent)?;
    if have.is_some() {
        pktline::encode(out, b"thin-pack\n")?;
    }
    if p.no_progress {
        pktline::encode(out, b"no-progress\n")?;
    }
    pktline::encode(out, b"ofs-delta\n")?;
    let mut hex = [0u8; 40];
    if let Some(have) = have {
        pktline::encode_parts(out, &[b"shallow ", have.to_hex(&mut hex).as_bytes(), b"\n"])?;
    }
    if caps.fetch_shallow {
        pktline::encode(out, b"deepen 1\n")?;
    }
    pktline::encode_parts(out, &[b"want ", want.to_hex(&mut hex).as_bytes(), b"\n"])?;
    if let Some(have) = have {
        pktline::encode_parts(out, &[b"have ", have.to_hex(&mut hex).as_bytes(), b"\n"])?;
    }
    pktline::encode(out, b"done\n")?;
    pktline::flush(out);
    Ok(())
}

/// A v0/v1 upload-request for one commit: want + capabilities, `deepen 1`, flush, `done`.
/// With `have` (which needs the `shallow` capability): `thin-pack`, the commit as the
/// client's shallow boundary, and `have` before `done`.
pub(crate) fn v0_request(
    out: &mut Vec<u8>,
    caps: &V0Caps,
    p: &RequestParams<'_>,
    want: ObjectId,
    have: Option<ObjectId>,
) -> Result<(), Error> {
    let mut line = Vec::new();
    let mut hex = [0u8; 40];
    line.extend_from_slice(b"want ");
    line.extend_from_slice(want.to_hex(&mut hex).as_bytes());
    if caps.side_band_64k {
        line.extend_from_slice(b" side-band-64k");
    } else if caps.side_band {
        line.extend_from_slice(b" side-band");
    } else {
        return Err(Error::MissingCapability("side-band-64k"));
    }
    if have.is_some() && caps.thin_pack {
        line.extend_from_slice(b" thin-pack");
    }
    if caps.ofs_delta {
        line.extend_from_slice(b" ofs-delta");
    }
    if caps.shallow {
        line.extend_from_slice(b" shallow");
    }
    if caps.no_progress && p.no_progress {
        line.extend_from_slice(b" no-progress");
    }
    if caps.agent {
        line.extend_from_slice(b" agent=");
        line.extend_from_slice(p.agent.as_bytes());
    }
    line.push(b'\n');
    pktline::encode(out, &line)?;
    if let Some(have) = have {
        pktline::encode_parts(out, &[b"shallow ", have.to_hex(&mut hex).as_bytes(), b"\n"])?;
    }
    if caps.shallow {
        pktline::encode(out, b"deepen 1\n")?;
    }
    pktline::flush(out);
    if let Some(have) = have {
        pktline::encode_parts(out, &[b"have ", have.to_hex(&mut hex).as_bytes(), b"\n"])?;
    }
    pktline::encode(out, b"done\n")?;
    Ok(())
}

/// What one pkt-line of the response to a fetch request carried.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ResponseItem<'a> {
    /// Nothing for the caller (acknowledgments, shallow lines, section headers).
    Nothing,
    /// Pack bytes (side-band channel 1).
    PackData(&'a [u8]),
    /// Progress text (side-band channel 2).
    Progress(&'a [u8]),
    /// The response is complete.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Shallow,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseState {
    // v2
    SectionHeader,
    InSection(Section),
    // v0
    V0Shallow,
    V0Ack,
    // both
    Packfile,
    Done,
}

/// Parses the response to a v2 `fetch` command or a v0 upload-request.
#[derive(Debug)]
pub(crate) struct FetchResponse {
    state: ResponseState,
}

impl FetchResponse {
    /// Parser for a v2 fetch response.
    pub fn v2() -> Self {
        FetchResponse {
            state: ResponseState::SectionHeader,
        }
    }

    /// Parser for a v0 response; `deepened` tells whether `deepen` was sent (then a shallow
    /// list and a flush come first).
    pub fn v0(deepened: bool) -> Self {
        FetchResponse {
            state: if deepened {
                ResponseState::V0Shallow
            } else {
                ResponseState::V0Ack
            },
        }
    }

    /// True once the terminating flush of the pack was seen.
    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.state == ResponseState::Done
    }

    /// True once the pack data started.
    #[cfg(test)]
    pub fn in_pack(&self) -> bool {
        self.state == ResponseState::Packfile
    }

    /// Feeds one pkt-line.
    pub fn on_pkt<'a>(&mut self, pkt: Pkt<'a>) -> Result<ResponseItem<'a>, Error> {
        use ResponseState::*;
        if self.state != Packfile
            && let Pkt::Data(d) = pkt
            && let Some(msg) = err_message(d)
        {
            return Err(Error::Remote(sanitize(msg)));
        }
        let unexpected = |what: &str| {
            Err(Error::Protocol(alloc::format!(
                "unexpected {what} in fetch response"
            )))
        };
        match (self.state, pkt) {
            (SectionHeader, Pkt::Data(d)) => {
                self.state = match trim_lf(d) {
                    b"packfile" => Packfile,
                    b"shallow-info" => InSection(Section::Shallow),
                    b"acknowledgments" | b"wanted-refs" | b"packfile-uris" => {
                        InSection(Section::Other)
                    }
                    other => {
                        return Err(Error::Protocol(alloc::format!(
                            "unknown section '{}' in fetch response",
                            sanitize(other)
                        )));
                    }
                };
                Ok(ResponseItem::Nothing)
            }
            (InSection(Section::Shallow), Pkt::Data(d)) | (V0Shallow, Pkt::Data(d)) => {
                check_shallow_line(d)?;
                Ok(ResponseItem::Nothing)
            }
            (InSection(Section::Other), Pkt::Data(_)) => Ok(ResponseItem::Nothing),
            (InSection(_), Pkt::Delim) => {
                self.state = SectionHeader;
                Ok(ResponseItem::Nothing)
            }
            (V0Shallow, Pkt::Flush) => {
                self.state = V0Ack;
                Ok(ResponseItem::Nothing)
            }
            (V0Ack, Pkt::Data(d)) => {
                let line = trim_lf(d);
                if line == b"NAK" || line.starts_with(b"ACK ") {
                    self.state = Packfile;
                    Ok(ResponseItem::Nothing)
                } else if line.starts_with(b"shallow ") || line.starts_with(b"unshallow ") {
                    // Shallow info without a deepen request: tolerate.
                    Ok(ResponseItem::Nothing)
                } else {
                    Err(Error::Protocol(alloc::format!(
                        "expected NAK, got '{}'",
                        sanitize(line)
                    )))
                }
            }
            (Packfile, Pkt::Data(d)) => match sideband::demux(d)? {
                Band::Data(data) => Ok(ResponseItem::PackData(data)),
                Band::Progress(text) => Ok(ResponseItem::Progress(text)),
                Band::Fatal(msg) => Err(Error::Remote(sanitize(msg))),
            },
            (Packfile, Pkt::Flush) | (Packfile, Pkt::ResponseEnd) => {
                self.state = Done;
                Ok(ResponseItem::End)
            }
            (Done, _) => unexpected("data after the end"),
            (_, Pkt::Flush) => unexpected("flush"),
            (_, Pkt::Delim) => unexpected("delimiter"),
            (_, Pkt::ResponseEnd) => unexpected("response end"),
        }
    }
}

fn check_shallow_line(d: &[u8]) -> Result<(), Error> {
    let line = trim_lf(d);
    let hex = line
        .strip_prefix(b"shallow ")
        .or_else(|| line.strip_prefix(b"unshallow "));
    match hex.and_then(ObjectId::from_hex) {
        Some(_) => Ok(()),
        None => Err(Error::Protocol(alloc::format!(
            "malformed shallow line '{}'",
            sanitize(line)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::PktReader;
    #[allow(unused_imports)]
    use alloc::string::ToString;
    use alloc::vec;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn pkts(lines: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in lines {
            match *l {
                b"0000" => pktline::flush(&mut out),
                b"0001" => pktline::delim(&mut out),
                l => pktline::encode(&mut out, l).unwrap(),
            }
        }
        out
    }

    fn discover(stream: &[u8], wanted: &str) -> Result<Advertisement, Error> {
        let mut d = Discovery::new(wanted, 100);
        let mut r = PktReader::new(65520);
        r.push(stream);
        while let Some(p) = r.next_pkt()? {
            if let Some(a) = d.on_pkt(p)? {
                return Ok(a);
            }
        }
        Err(Error::Protocol("incomplete".into()))
    }

    #[test]
    fn v0_advertisement() {
        let first = alloc::format!(
            "{A} HEAD\0multi_ack side-band-64k ofs-delta shallow no-progress symref=HEAD:refs/heads/main agent=git/2.47 object-format=sha1\n"
        );
        let main = alloc::format!("{A} refs/heads/main\n");
        let tag = alloc::format!("{B} refs/tags/v1\n");
        let peeled = alloc::format!("{A} refs/tags/v1^{{}}\n");
        let s = pkts(&[
            b"# service=git-upload-pack\n",
            b"0000",
            first.as_bytes(),
            main.as_bytes(),
            tag.as_bytes(),
            peeled.as_bytes(),
            b"0000",
        ]);
        let Advertisement::V0 { caps, wanted } = discover(&s, "HEAD").unwrap() else {
            panic!()
        };
        assert!(caps.side_band_64k && caps.ofs_delta && caps.shallow && caps.no_progress);
        assert!(caps.agent);
        assert_eq!(caps.object_format.as_deref(), Some("sha1"));
        let w = wanted.unwrap();
        assert_eq!(w.oid.to_string(), A);
        assert_eq!(w.symref.as_deref(), Some("refs/heads/main"));
        // peeled tag
        let Advertisement::V0 { wanted, .. } = discover(&s, "refs/tags/v1").unwrap() else {
            panic!()
        };
        let w = wanted.unwrap();
        assert_eq!(w.oid.to_string(), B);
        assert_eq!(w.commit().to_string(), A);
        // missing branch
        let Advertisement::V0 { wanted, .. } = discover(&s, "refs/heads/nope").unwrap() else {
            panic!()
        };
        assert!(wanted.is_none());
    }

    #[test]
    fn v0_empty_repo_and_version1() {
        let z = "0000000000000000000000000000000000000000";
        let first = alloc::format!("{z} capabilities^{{}}\0side-band-64k\n");
        let s = pkts(&[b"version 1\n", first.as_bytes(), b"0000"]);
        let Advertisement::V0 { caps, wanted } = discover(&s, "HEAD").unwrap() else {
            panic!()
        };
        assert!(caps.side_band_64k);
        assert!(wanted.is_none());
    }

    #[test]
    fn v0_too_many_refs_and_garbage() {
        let mut lines = vec![];
        let l = alloc::format!("{A} refs/heads/x\n");
        for _ in 0..101 {
            lines.push(l.as_bytes());
        }
        lines.push(b"0000");
        assert_eq!(
            discover(&pkts(&lines), "HEAD"),
            Err(Error::TooManyRefs { limit: 100 })
        );
        assert!(matches!(
            discover(&pkts(&[b"hello\n", b"0000"]), "HEAD"),
            Err(Error::Protocol(_))
        ));
        assert_eq!(
            discover(&pkts(&[b"ERR access denied\n"]), "HEAD"),
            Err(Error::Remote("access denied".into()))
        );
        assert!(discover(&pkts(&[b"0000"]), "HEAD").is_err());
    }

    #[test]
    fn v2_advertisement() {
        let s = pkts(&[
            b"version 2\n",
            b"agent=git/2.47.3\n",
            b"ls-refs=unborn\n",
            b"fetch=shallow wait-for-done\n",
            b"server-option\n",
            b"object-format=sha1\n",
            b"0000",
        ]);
        let Advertisement::V2(c) = discover(&s, "HEAD").unwrap() else {
            panic!()
        };
        assert!(c.agent && c.ls_refs && c.fetch && c.fetch_shallow);
        assert_eq!(c.object_format.as_deref(), Some("sha1"));
        // Lenient: a "# service" preamble before "version 2".
        let s2 = [pkts(&[b"# service=git-upload-pack\n", b"0000"]), s].concat();
        assert!(matches!(
            discover(&s2, "HEAD").unwrap(),
            Advertisement::V2(_)
        ));
    }

    #[test]
    fn ls_refs_parsing() {
        let head = alloc::format!("{A} HEAD symref-target:refs/heads/main\n");
        let other = alloc::format!("{B} refs/heads/mainline\n");
        let mut p = LsRefs::new("HEAD", 10);
        assert_eq!(p.on_pkt(Pkt::Data(b"unborn refs/heads/x\n")).unwrap(), None);
        assert_eq!(p.on_pkt(Pkt::Data(head.as_bytes())).unwrap(), None);
        assert_eq!(p.on_pkt(Pkt::Data(other.as_bytes())).unwrap(), None);
        let t = p.on_pkt(Pkt::Flush).unwrap().unwrap().unwrap();
        assert_eq!(t.symref.as_deref(), Some("refs/heads/main"));
        assert_eq!(t.oid.to_string(), A);

        let tag = alloc::format!("{B} refs/heads/t peeled:{A}\n");
        let mut p = LsRefs::new("refs/heads/t", 10);
        p.on_pkt(Pkt::Data(tag.as_bytes())).unwrap();
        assert_eq!(
            p.on_pkt(Pkt::Flush)
                .unwrap()
                .unwrap()
                .unwrap()
                .commit()
                .to_string(),
            A
        );

        let mut p = LsRefs::new("refs/heads/main", 10);
        p.on_pkt(Pkt::Data(other.as_bytes())).unwrap();
        assert_eq!(p.on_pkt(Pkt::Flush).unwrap(), Some(None));
        let mut p = LsRefs::new("HEAD", 10);
        assert!(p.on_pkt(Pkt::Data(b"xyz\n")).is_err());
        assert!(p.on_pkt(Pkt::Delim).is_err());
        assert_eq!(
            p.on_pkt(Pkt::Data(b"ERR nope")),
            Err(Error::Remote("nope".into()))
        );
    }

    #[test]
    fn requests() {
        let caps = V2Caps {
            agent: true,
            ls_refs: true,
            fetch: true,
            fetch_shallow: true,
            object_format: Some("sha1".into()),
            lines: 0,
        };
        let p = RequestParams {
            agent: "git/unipi",
            wanted_ref: "refs/heads/main",
            no_progress: true,
        };
        let mut out = Vec::new();
        v2_ls_refs(&mut out, &caps, &p).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "0014command=ls-refs\n0014agent=git/unipi\n0017object-format=sha1\n0001000csymrefs\n0009peel\n001fref-prefix refs/heads/main\n0000"
        );
        let mut out = Vec::new();
        let want = ObjectId::from_hex(A.as_bytes()).unwrap();
        v2_fetch(&mut out, &caps, &p, want, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("0012command=fetch\n"));
        assert!(text.contains("0010no-progress\n000eofs-delta\n000ddeepen 1\n0032want 1111"));
        assert!(text.ends_with("0009done\n0000"));
        assert!(!text.contains("thin-pack"));

        let v0caps = V0Caps::parse(b"side-band-64k ofs-delta shallow no-progress agent=x");
        let mut out = Vec::new();
        v0_request(&mut out, &v0caps, &p, want, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            alloc::format!(
                "006ewant {A} side-band-64k ofs-delta shallow no-progress agent=git/unipi\n000ddeepen 1\n00000009done\n"
            )
        );
        // Incremental: what `git fetch --depth=1` sends from a shallow clone (GIT_TRACE_PACKET
        // against git 2.47), with `done` in the same request.
        let have = ObjectId::from_hex(B.as_bytes()).unwrap();
        let mut out = Vec::new();
        v2_fetch(&mut out, &caps, &p, want, Some(have)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with(&alloc::format!(
                "0001000ethin-pack\n0010no-progress\n000eofs-delta\n0035shallow {B}\n000ddeepen 1\n0032want {A}\n0032have {B}\n0009done\n0000"
            )),
            "{text}"
        );
        let v0caps = V0Caps::parse(b"thin-pack side-band-64k ofs-delta shallow");
        let mut out = Vec::new();
        v0_request(&mut out, &v0caps, &p, want, Some(have)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            alloc::format!(
                "005cwant {A} side-band-64k thin-pack ofs-delta shallow\n0035shallow {B}\n000ddeepen 1\n00000032have {B}\n0009done\n"
            )
        );
        let none = V0Caps::parse(b"ofs-delta");
        assert_eq!(
            v0_request(&mut Vec::new(), &none, &p, want, None),
            Err(Error::MissingCapability("side-band-64k"))
        );

        let mut out = Vec::new();
        git_daemon_request(&mut out, "/site.git", "h:1234", true).unwrap();
        assert_eq!(
            out,
            b"0035git-upload-pack /site.git\0host=h:1234\0\0version=2\0"
        );
    }

    #[test]
    fn v2_fetch_response() {
        let sh = alloc::format!("shallow {A}\n");
        let mut r = FetchResponse::v2();
        assert_eq!(
            r.on_pkt(Pkt::Data(b"shallow-info\n")).unwrap(),
            ResponseItem::Nothing
        );
        assert_eq!(
            r.on_pkt(Pkt::Data(sh.as_bytes())).unwrap(),
            ResponseItem::Nothing
        );
        assert!(r.clone_state_err(Pkt::Data(b"shallow xyz\n")));
        assert_eq!(r.on_pkt(Pkt::Delim).unwrap(), ResponseItem::Nothing);
        assert_eq!(
            r.on_pkt(Pkt::Data(b"packfile\n")).unwrap(),
            ResponseItem::Nothing
        );
        assert!(r.in_pack());
        assert_eq!(
            r.on_pkt(Pkt::Data(b"\x01PACK")).unwrap(),
            ResponseItem::PackData(b"PACK")
        );
        assert_eq!(
            r.on_pkt(Pkt::Data(b"\x0250%\r")).unwrap(),
            ResponseItem::Progress(b"50%\r")
        );
        assert_eq!(r.on_pkt(Pkt::Flush).unwrap(), ResponseItem::End);
        assert!(r.is_done());
        assert!(r.on_pkt(Pkt::Data(b"\x01x")).is_err());

        let mut r = FetchResponse::v2();
        assert!(r.on_pkt(Pkt::Data(b"bogus\n")).is_err());
        let mut r = FetchResponse::v2();
        r.on_pkt(Pkt::Data(b"packfile\n")).unwrap();
        assert_eq!(
            r.on_pkt(Pkt::Data(b"\x03disk full\n")),
            Err(Error::Remote("disk full".into()))
        );
        let mut r = FetchResponse::v2();
        assert_eq!(
            r.on_pkt(Pkt::Data(b"ERR oops\n")),
            Err(Error::Remote("oops".into()))
        );
        let mut r = FetchResponse::v2();
        assert!(r.on_pkt(Pkt::Flush).is_err());
    }

    #[test]
    fn v0_fetch_response() {
        let sh = alloc::format!("shallow {A}\n");
        let mut r = FetchResponse::v0(true);
        r.on_pkt(Pkt::Data(sh.as_bytes())).unwrap();
        r.on_pkt(Pkt::Flush).unwrap();
        r.on_pkt(Pkt::Data(b"NAK\n")).unwrap();
        assert_eq!(
            r.on_pkt(Pkt::Data(b"\x01PACK")).unwrap(),
            ResponseItem::PackData(b"PACK")
        );
        assert_eq!(r.on_pkt(Pkt::Flush).unwrap(), ResponseItem::End);
        let mut r = FetchResponse::v0(false);
        assert!(r.on_pkt(Pkt::Data(b"PACK")).is_err());
        let mut r = FetchResponse::v0(false);
        assert_eq!(
            r.on_pkt(Pkt::Data(b"ERR upload-pack: not our ref")),
            Err(Error::Remote("upload-pack: not our ref".into()))
        );
    }

    impl FetchResponse {
        fn clone_state_err(&self, pkt: Pkt<'_>) -> bool {
            let mut c = FetchResponse { state: self.state };
            c.on_pkt(pkt).is_err()
        }
    }
}
