//! `unipi.muen`: the unipi-rs web server as a Muen native subject.

#![no_std]
#![no_main]

mod entropy;
mod platform;

use muen_abi::muennet::MuennetDevice;
use muen_subject::Runtime;
use platform::MuenPlatform;

muen_subject::subject_main!(main);

/// The network device, as named in the component spec.
const NET_DEVICE: &str = "net0";

fn main(rt: &mut Runtime) -> i32 {
    // Warnings and errors from now on are kept for unipi's syslog
    // (Platform::drain_log), boot-parameter warnings included.
    muen_subject::console::tap_enable(log::LevelFilter::Warn);
    let device = match muen_subject::net::open(&rt.sinfo, NET_DEVICE) {
        Ok((rx, tx)) => Some(MuennetDevice::new(rx, tx)),
        Err(e) => {
            log::error!("network device {NET_DEVICE}: {e:?}");
            None
        }
    };
    let notify = rt.sinfo.event("net0|notify");
    // With a notify event the peer reads the channel on every notification,
    // at least 256 frames each time (the minimal kernel's bridge budget), so
    // bursts up to that never overrun the 691-slot channel.
    let device = device.map(|mut d| {
        if notify.is_some() {
            d.set_tx_burst(256);
        }
        d
    });
    let yield_event = rt.sinfo.event("yield");
    let mut platform = MuenPlatform::new(rt, device, notify, yield_event);
    unipi::run(&mut platform)
}
