//! PCI configuration space through the legacy 0xCF8/0xCFC mechanism.

use crate::cpu::{inl, outl};

/// A PCI function address.
#[derive(Clone, Copy, Debug)]
pub struct Bdf {
    pub bus: u8,
    pub dev: u8,
    pub func: u8,
}

impl Bdf {
    fn addr(&self, off: u8) -> u32 {
        0x8000_0000
            | (self.bus as u32) << 16
            | (self.dev as u32) << 11
            | (self.func as u32) << 8
            | (off as u32 & 0xFC)
    }

    /// Reads a config dword.
    pub fn read32(&self, off: u8) -> u32 {
        outl(0xCF8, self.addr(off));
        inl(0xCFC)
    }

    /// Writes a config dword.
    pub fn write32(&self, off: u8, v: u32) {
        outl(0xCF8, self.addr(off));
        outl(0xCFC, v);
    }
}

/// Finds the first function with `vendor` and one of `devices` on bus 0..=`max_bus`.
pub fn find(vendor: u16, devices: &[u16], max_bus: u8) -> Option<(Bdf, u16)> {
    for bus in 0..=max_bus {
        for dev in 0..32 {
            for func in 0..8 {
                let b = Bdf { bus, dev, func };
                let id = b.read32(0);
                if id == 0xFFFF_FFFF || id == 0 {
                    if func == 0 {
                        break;
                    }
                    continue;
                }
                let (v, d) = (id as u16, (id >> 16) as u16);
                if v == vendor && devices.contains(&d) {
                    return Some((b, d));
                }
                if func == 0 && b.read32(0x0C) & 0x0080_0000 == 0 {
                    break;
                }
            }
        }
    }
    None
}
