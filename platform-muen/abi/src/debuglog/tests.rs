use super::*;
use crate::channel::{ReadResult, Reader};
use crate::test_util::Region;
use std::string::String;
use std::vec::Vec;

/// All elements currently in the channel, decoded to (timestamp, raw text).
fn elements(r: &Region) -> Vec<(u64, Vec<u8>)> {
    let mut rd = Reader::new(r.mem(), PROTOCOL, ELEMENT_SIZE);
    let mut out = [0u8; ELEMENT_SIZE];
    let mut v = Vec::new();
    loop {
        match rd.read(&mut out) {
            ReadResult::Success => v.push((
                u64::from_le_bytes(out[..8].try_into().unwrap()),
                out[8..].to_vec(),
            )),
            ReadResult::EpochChanged => continue,
            _ => break,
        }
    }
    v
}

fn text(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    &raw[..end]
}

#[test]
fn layout() {
    assert_eq!(ELEMENT_SIZE, 64);
    assert_eq!(TEXT_OFFSET + TEXT_SIZE, ELEMENT_SIZE);
    let r = Region::new(0x2_0000);
    let w = LogWriter::new(r.mem(), 5).unwrap();
    assert_eq!(w.inner().elements(), 2047);
    assert_eq!(w.inner().protocol(), 0xf00789094b6f70cf);
}

#[test]
fn line_splitting_like_solo5() {
    let r = Region::new(0x2_0000);
    let mut w = LogWriter::new(r.mem(), 5).unwrap();
    w.write(b"hel\0lo\r\n", 11);
    let a = "a".repeat(56);
    w.write(a.as_bytes(), 12); // exactly full: flushed without LF
    w.write(b"b\n", 13);
    let c = "c".repeat(55);
    w.write(c.as_bytes(), 14);
    w.write(b"\n", 14); // 55 chars + LF = one full element
    let d = "d".repeat(120);
    w.write(d.as_bytes(), 15);
    w.write(b"\n", 16);
    w.write(b"partial", 17);
    assert_eq!(w.buffered(), 7);
    let els = elements(&r);
    let texts: Vec<(u64, String)> = els
        .iter()
        .map(|(ts, t)| (*ts, String::from_utf8(text(t).to_vec()).unwrap()))
        .collect();
    let expect = [
        (11, String::from("hello\n")),
        (12, a.clone()),
        (13, String::from("b\n")),
        (14, c.clone() + "\n"),
        (15, "d".repeat(56)),
        (15, "d".repeat(56)),
        (16, "d".repeat(8) + "\n"),
    ];
    assert_eq!(texts, expect);
    // Unused text bytes are zero.
    assert!(els[0].1[6..].iter().all(|&b| b == 0));
    // The partial line appears only when flushed.
    w.flush(18);
    assert_eq!(w.buffered(), 0);
    w.flush(19); // nothing buffered: no element
    let els = elements(&r);
    assert_eq!(els.len(), 8);
    assert_eq!(els[7].0, 18);
    assert_eq!(text(&els[7].1), b"partial");
}

#[test]
fn decode_element() {
    let mut e = [0u8; ELEMENT_SIZE];
    e[..8].copy_from_slice(&7u64.to_le_bytes());
    e[8..14].copy_from_slice(b"abc\nde");
    assert_eq!(
        decode(&e),
        Element {
            timestamp: 7,
            text: b"abc",
            newline: true
        }
    );
    e[11] = 0;
    assert_eq!(decode(&e).text, b"abc");
    assert!(!decode(&e).newline);
    let full = [b'x'; ELEMENT_SIZE];
    let el = decode(&full);
    assert_eq!(el.text.len(), TEXT_SIZE);
    assert!(!el.newline);
}

#[test]
fn reader_reassembles_lines() {
    let r = Region::new(0x2_0000);
    let mut w = LogWriter::new(r.mem(), 5).unwrap();
    let mut rd = LogReader::new(r.mem());
    assert_eq!(rd.poll(), LogEvent::EpochChanged);
    assert_eq!(rd.poll(), LogEvent::Empty);
    w.write(b"short\n", 1);
    let long = "0123456789".repeat(15); // 150 bytes: 3 elements
    w.write(long.as_bytes(), 2);
    w.write(b"\n\n", 3);
    assert_eq!(rd.poll(), LogEvent::Line(b"short"));
    assert_eq!(rd.poll(), LogEvent::Line(long.as_bytes()));
    assert_eq!(rd.last_timestamp(), 3);
    assert_eq!(rd.poll(), LogEvent::Line(b""));
    assert_eq!(rd.poll(), LogEvent::Empty);
    // A partial line is held until its end arrives.
    w.write("x".repeat(60).as_bytes(), 4);
    assert_eq!(rd.poll(), LogEvent::Empty);
    w.write(b"y\n", 5);
    let expect = "x".repeat(60) + "y";
    assert_eq!(rd.poll(), LogEvent::Line(expect.as_bytes()));
    assert_eq!(rd.take_partial(), None);
    // take_partial flushes an unterminated line (subject stopped).
    w.write("z".repeat(57).as_bytes(), 6);
    assert_eq!(rd.poll(), LogEvent::Empty);
    assert_eq!(rd.take_partial(), Some("z".repeat(56).as_bytes()));
    assert_eq!(rd.take_partial(), None);
    w.flush(7);
    assert_eq!(
        rd.poll(),
        LogEvent::Empty,
        "a flushed fragment without LF stays buffered"
    );
    assert_eq!(rd.take_partial(), Some(&b"z"[..]));
}

#[test]
fn reader_splits_over_long_lines() {
    let r = Region::new(0x2_0000);
    let mut w = LogWriter::new(r.mem(), 5).unwrap();
    let mut rd = LogReader::new(r.mem());
    let line: Vec<u8> = (0..1200).map(|i| b'a' + (i % 26) as u8).collect();
    w.write(&line, 1);
    w.write(b"\n", 1);
    w.write(b"next\n", 2);
    assert_eq!(rd.poll(), LogEvent::EpochChanged);
    let mut got = Vec::new();
    let mut pieces = 0;
    loop {
        match rd.poll() {
            LogEvent::Partial(p) => {
                assert_eq!(p.len(), LINE_MAX);
                got.extend_from_slice(p);
                pieces += 1;
            }
            LogEvent::Line(l) => {
                got.extend_from_slice(l);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pieces, 2);
    assert_eq!(got, line);
    assert_eq!(rd.poll(), LogEvent::Line(b"next"));
    // Exactly LINE_MAX bytes plus LF is one line.
    let exact = std::vec![b'q'; LINE_MAX];
    w.write(&exact, 3);
    w.write(b"\n", 3);
    assert_eq!(rd.poll(), LogEvent::Line(&exact[..]));
    // LINE_MAX + 1 bytes: one Partial and a one-byte Line.
    let more = std::vec![b'r'; LINE_MAX + 1];
    w.write(&more, 4);
    w.write(b"\n", 4);
    assert_eq!(rd.poll(), LogEvent::Partial(&more[..LINE_MAX]));
    assert_eq!(rd.poll(), LogEvent::Line(b"r"));
    assert_eq!(rd.poll(), LogEvent::Empty);
}

#[test]
fn reader_reports_epoch_change_and_overrun() {
    let r = Region::new(64 + 4 * 64);
    let mut w = LogWriter::new(r.mem(), 5).unwrap();
    let mut rd = LogReader::new(r.mem());
    assert_eq!(rd.poll(), LogEvent::EpochChanged);
    // Unterminated text, then the writer restarts: the piece is reported.
    w.write("p".repeat(56).as_bytes(), 1);
    assert_eq!(rd.poll(), LogEvent::Empty);
    w.inner_mut().restart(6);
    assert_eq!(rd.poll(), LogEvent::Partial("p".repeat(56).as_bytes()));
    assert_eq!(rd.poll(), LogEvent::EpochChanged);
    assert_eq!(rd.poll(), LogEvent::Empty);
    // More lines than the ring holds.
    for i in 0..6u8 {
        w.write(&[b'0' + i, b'\n'], 2);
    }
    assert_eq!(rd.poll(), LogEvent::Overrun);
    assert_eq!(rd.inner().overruns(), 1);
    assert_eq!(rd.poll(), LogEvent::Empty);
    w.write(b"after\n", 3);
    assert_eq!(rd.poll(), LogEvent::Line(b"after"));
    // Deactivated and foreign channels.
    w.inner_mut().deactivate();
    assert_eq!(rd.poll(), LogEvent::Inactive);
    let other = Region::new(4096);
    let _net = crate::channel::Writer::new(other.mem(), 1234, 64, 1).unwrap();
    let mut rd2 = LogReader::new(other.mem());
    assert_eq!(rd2.poll(), LogEvent::Incompatible);
}

#[test]
fn reader_poll_is_bounded_against_endless_fragments() {
    // Elements of NULs only (empty text, no LF) must not make poll spin.
    let r = Region::new(0x2_0000);
    let mut w = crate::channel::Writer::new(r.mem(), PROTOCOL, ELEMENT_SIZE, 9).unwrap();
    let mut rd = LogReader::new(r.mem());
    assert_eq!(rd.poll(), LogEvent::EpochChanged);
    for _ in 0..100 {
        w.write(&[&[0u8; ELEMENT_SIZE]]).unwrap();
    }
    let mut polls = 0;
    while rd.poll() != LogEvent::Empty || rd.inner().read_count() < 100 {
        polls += 1;
        assert!(polls < 100);
    }
}
