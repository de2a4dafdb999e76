use super::*;
use crate::channel::{ChannelError, Writer, element_count};
use crate::test_util::Region;

#[test]
fn layout() {
    assert_eq!(ELEMENT_SIZE, MAX_FRAME + 2);
    assert_eq!(MAX_FRAME, MTU + 14);
    assert_eq!(element_count(0x10_0000, ELEMENT_SIZE), 691);
    let r = Region::new(0x10_0000);
    let w = NetWriter::new(r.mem(), 1).unwrap();
    assert_eq!(w.inner().elements(), 691);
    assert_eq!(w.inner().element_size(), 1516);
    assert_eq!(w.inner().protocol(), 0x7ade5c549b08e814);
}

#[test]
fn frame_roundtrip() {
    let r = Region::new(0x10_0000);
    let mut w = NetWriter::new(r.mem(), 0xfeed).unwrap();
    let mut rd = NetReader::new(r.mem());
    let mut buf = [0xAAu8; ELEMENT_SIZE];
    assert_eq!(rd.receive(&mut buf), RxResult::EpochChanged);
    assert_eq!(rd.epoch(), 0xfeed);
    assert_eq!(rd.receive(&mut buf), RxResult::NoData);
    assert!(!rd.has_pending());
    for len in [1usize, 14, 59, 60, 1000, MAX_FRAME] {
        let frame: std::vec::Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        w.send(&frame).unwrap();
        assert!(rd.has_pending());
        assert_eq!(rd.receive(&mut buf), RxResult::Frame(len));
        assert_eq!(&buf[..len], &frame[..]);
        // Rest of the element zero, length trailer little-endian.
        assert!(buf[len..MAX_FRAME].iter().all(|&b| b == 0));
        assert_eq!(&buf[MAX_FRAME..], &(len as u16).to_le_bytes());
    }
    assert_eq!(rd.receive(&mut buf), RxResult::NoData);
    assert_eq!(rd.bad_frames(), 0);
}

#[test]
fn bad_frames_rejected_on_send() {
    let r = Region::new(0x10_0000);
    let mut w = NetWriter::new(r.mem(), 1).unwrap();
    assert_eq!(w.send(&[]), Err(FrameError::Empty));
    assert_eq!(w.send(&[0; 1515]), Err(FrameError::TooLong(1515)));
    assert_eq!(w.inner().write_count(), 0);
    w.deactivate();
    assert_eq!(
        w.send(&[1]),
        Err(FrameError::Channel(ChannelError::Inactive))
    );
    w.restart(2);
    assert_eq!(w.inner().epoch(), 2);
    w.send(&[1]).unwrap();
}

#[test]
fn bad_length_trailer_reported() {
    let r = Region::new(0x10_0000);
    // A raw writer puts arbitrary trailers into muennet elements.
    let mut w = Writer::new(r.mem(), PROTOCOL, ELEMENT_SIZE, 3).unwrap();
    let mut rd = NetReader::new(r.mem());
    let mut buf = [0u8; ELEMENT_SIZE];
    assert_eq!(rd.receive(&mut buf), RxResult::EpochChanged);
    w.write_at(&[(0, &[1, 2, 3]), (MAX_FRAME, &0u16.to_le_bytes())])
        .unwrap();
    w.write_at(&[(MAX_FRAME, &1515u16.to_le_bytes())]).unwrap();
    w.write_at(&[(MAX_FRAME, &u16::MAX.to_le_bytes())]).unwrap();
    w.write_at(&[(0, &[9; 3]), (MAX_FRAME, &3u16.to_le_bytes())])
        .unwrap();
    assert_eq!(rd.receive(&mut buf), RxResult::BadLength(0));
    assert_eq!(rd.receive(&mut buf), RxResult::BadLength(1515));
    assert_eq!(rd.receive(&mut buf), RxResult::BadLength(u16::MAX));
    assert_eq!(rd.receive(&mut buf), RxResult::Frame(3));
    assert_eq!(&buf[..3], &[9; 3]);
    assert_eq!(rd.bad_frames(), 3);
}

#[test]
fn reader_rejects_other_geometry() {
    let r = Region::new(0x10_0000);
    // Same protocol, wrong element size (e.g. a peer with a different MTU).
    let _w = Writer::new(r.mem(), PROTOCOL, 9016, 3).unwrap();
    let mut rd = NetReader::new(r.mem());
    let mut buf = [0u8; ELEMENT_SIZE];
    assert_eq!(rd.receive(&mut buf), RxResult::Incompatible);
    assert!(!rd.has_pending());
    let r2 = Region::new(0x1000);
    let mut rd2 = NetReader::new(r2.mem());
    assert_eq!(rd2.receive(&mut buf), RxResult::Inactive);
}

#[test]
fn overrun_then_newest_frames() {
    let r = Region::new(64 + 3 * ELEMENT_SIZE);
    let mut w = NetWriter::new(r.mem(), 1).unwrap();
    let mut rd = NetReader::new(r.mem());
    let mut buf = [0u8; ELEMENT_SIZE];
    assert_eq!(rd.receive(&mut buf), RxResult::EpochChanged);
    for i in 0..5u8 {
        w.send(&[i; 60]).unwrap();
    }
    assert_eq!(rd.receive(&mut buf), RxResult::Overrun);
    assert_eq!(rd.overruns(), 1);
    assert_eq!(rd.lost_elements(), 5);
    assert_eq!(rd.receive(&mut buf), RxResult::NoData);
    w.send(&[42; 60]).unwrap();
    assert_eq!(rd.receive(&mut buf), RxResult::Frame(60));
    assert_eq!(buf[0], 42);
    w.send(&[43; 60]).unwrap();
    rd.drain();
    assert_eq!(rd.receive(&mut buf), RxResult::NoData);
}

#[cfg(feature = "smoltcp")]
#[test]
fn device_skips_non_frames_and_counts() {
    use smoltcp::phy::{Device, RxToken, TxToken};
    use smoltcp::time::Instant;

    let to_dev = Region::new(64 + 8 * ELEMENT_SIZE);
    let from_dev = Region::new(64 + 8 * ELEMENT_SIZE);
    let mut peer_tx = Writer::new(to_dev.mem(), PROTOCOL, ELEMENT_SIZE, 7).unwrap();
    let mut peer_rx = NetReader::new(from_dev.mem());
    let mut dev = MuennetDevice::new(
        NetReader::new(to_dev.mem()),
        NetWriter::new(from_dev.mem(), 8).unwrap(),
    );
    let now = Instant::from_millis(0);
    let caps = dev.capabilities();
    assert_eq!(caps.max_transmission_unit, 1514);
    assert_eq!(caps.medium, smoltcp::phy::Medium::Ethernet);
    assert!(dev.receive(now).is_none());
    peer_tx
        .write_at(&[(MAX_FRAME, &0u16.to_le_bytes())])
        .unwrap();
    peer_tx
        .write_at(&[(0, b"frame"), (MAX_FRAME, &5u16.to_le_bytes())])
        .unwrap();
    assert!(dev.has_pending());
    let (rx, tx) = dev.receive(now).expect("a frame");
    assert_eq!(rx.consume(|f| f.to_vec()), b"frame");
    tx.consume(3, |b| b.copy_from_slice(b"abc"));
    let tx = dev.transmit(now).unwrap();
    tx.consume(MAX_FRAME, |b| b.fill(1));
    let tx = dev.transmit(now).unwrap();
    tx.consume(MAX_FRAME + 1, |b| assert_eq!(b.len(), MAX_FRAME));
    assert!(dev.receive(now).is_none());
    let s = dev.stats();
    assert_eq!(s.rx_frames, 1);
    assert_eq!(s.rx_bytes, 5);
    assert_eq!(s.rx_bad, 1);
    assert_eq!(s.rx_epoch_changes, 1);
    assert_eq!(s.tx_frames, 2);
    assert_eq!(s.tx_bytes, 3 + 1514);
    assert_eq!(s.tx_dropped, 1);

    let mut buf = [0u8; ELEMENT_SIZE];
    assert_eq!(peer_rx.receive(&mut buf), RxResult::EpochChanged);
    assert_eq!(peer_rx.receive(&mut buf), RxResult::Frame(3));
    assert_eq!(&buf[..3], b"abc");
    assert_eq!(peer_rx.receive(&mut buf), RxResult::Frame(1514));
    assert_eq!(peer_rx.receive(&mut buf), RxResult::NoData);

    // Overrun on the receive side is skipped and counted.
    for _ in 0..9 {
        peer_tx
            .write_at(&[(0, b"x"), (MAX_FRAME, &1u16.to_le_bytes())])
            .unwrap();
    }
    assert!(dev.receive(now).is_none());
    assert_eq!(dev.stats().rx_overruns, 1);
    assert_eq!(dev.stats().rx_lost, 9);
    dev.writer_mut().deactivate();
    assert!(dev.transmit(now).is_none());
}

#[cfg(feature = "smoltcp")]
#[test]
fn device_tx_burst_limit_waits_for_notified() {
    use smoltcp::phy::{Device, TxToken};
    use smoltcp::time::Instant;

    let to_dev = Region::new(64 + 8 * ELEMENT_SIZE);
    let from_dev = Region::new(64 + 8 * ELEMENT_SIZE);
    let mut dev = MuennetDevice::new(
        NetReader::new(to_dev.mem()),
        NetWriter::new(from_dev.mem(), 8).unwrap(),
    );
    let now = Instant::from_millis(0);
    let send = |dev: &mut MuennetDevice| match dev.transmit(now) {
        Some(tx) => {
            tx.consume(60, |b| b.fill(7));
            true
        }
        None => false,
    };
    // No limit by default.
    for _ in 0..20 {
        assert!(send(&mut dev));
    }
    dev.set_tx_burst(3);
    dev.notified();
    assert!(send(&mut dev) && send(&mut dev) && send(&mut dev));
    assert!(!send(&mut dev), "limit reached");
    assert_eq!(dev.stats().tx_deferred, 1);
    dev.notified();
    assert!(send(&mut dev));
    assert_eq!(dev.stats().tx_frames, 24);
    dev.set_tx_burst(0);
    for _ in 0..10 {
        assert!(send(&mut dev));
    }
}

#[test]
fn backlog_counts_unread_frames() {
    let r = Region::new(0x10_0000);
    let mut w = NetWriter::new(r.mem(), 7).unwrap();
    let mut rd = NetReader::new(r.mem());
    let mut buf = [0u8; ELEMENT_SIZE];
    assert_eq!(rd.backlog(), (0, 0), "not synchronised yet");
    assert_eq!(rd.receive(&mut buf), RxResult::EpochChanged);
    assert_eq!(rd.backlog(), (0, 691));
    for _ in 0..5 {
        w.send(&[1; 60]).unwrap();
    }
    assert_eq!(rd.backlog(), (5, 691));
    assert_eq!(rd.receive(&mut buf), RxResult::Frame(60));
    assert_eq!(rd.backlog(), (4, 691));
    for _ in 0..1000 {
        w.send(&[2; 60]).unwrap();
    }
    assert_eq!(rd.backlog(), (691, 691), "capped at the element count");
    w.restart(8);
    assert_eq!(
        rd.backlog(),
        (0, 691),
        "a new epoch: nothing of ours pending"
    );
}
