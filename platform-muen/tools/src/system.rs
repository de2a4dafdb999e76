//! The system description the packer reads: which subjects run, which
//! component spec each instantiates, their boot parameters, the files behind
//! the memory they require, their events and the plan. It plays the role of
//! a Muen system policy (reduced to what the minimal kernel needs).
//!
//! ```xml
//! <system minorFrameMicros="1000" debugExit="true" sinfo="v04">
//!   <subject name="unipi" cspec="unipi.cspec.xml">
//!     <bootparams>--ipv4=192.168.254.10/24</bootparams>
//!     <memory logical="tls_cert" file="cert.pem"/>
//!     <event id="0" logical="solo5_exit" action="exit"/>
//!   </subject>
//! </system>
//! ```
//!
//! `sinfo="v04"` (default) or `sinfo="v05"` selects the layout of the subject
//! info pages the packer writes: v04 is what mugensinfo of both Muen toolchain
//! generations writes (muen-tools ddece096 and b7d6da0e), v05 the layout of
//! Solo5's newest Muen bindings (docs/muen.md, "Muen toolchain generations").
//!
//! `netRestartMillis="N"` (1..65535, default 0 = never) makes the minimal
//! kernel restart its network channels to the subjects with a new epoch
//! every N ms, as a restarting NIC subject would (a test aid, docs/kernel.md).
//!
//! Paths are relative to the directory of the system file. A subject without
//! `<event>` elements gets Solo5's `solo5_exit` (id 0, action exit), as the
//! mirage-solo5 policy declares it.

use crate::cspec::parse_number;
use muen_abi::sinfo::Version;
use muen_image::Action;
use std::path::{Path, PathBuf};

/// One `<subject>`.
#[derive(Debug, Clone)]
pub struct SubjectDesc {
    pub name: String,
    pub cspec: PathBuf,
    pub bootparams: String,
    /// (logical, file)
    pub memory: Vec<(String, PathBuf)>,
    /// (id, logical, action)
    pub events: Vec<(u8, String, Action)>,
}

/// The whole `<system>`.
#[derive(Debug, Clone)]
pub struct SystemDesc {
    pub minor_frame_us: u32,
    pub debug_exit: bool,
    /// Layout of the sinfo pages (v04 or v05).
    pub sinfo: Version,
    /// Network-channel restart period in ms (0: never).
    pub net_restart_ms: u16,
    pub subjects: Vec<SubjectDesc>,
}

impl SystemDesc {
    /// Reads a system description; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let doc = roxmltree::Document::parse(text).map_err(|e| format!("system XML: {e}"))?;
        let root = doc.root_element();
        if root.tag_name().name() != "system" {
            return Err("system: root element is not <system>".into());
        }
        let minor_frame_us = match root.attribute("minorFrameMicros") {
            Some(v) => u32::try_from(parse_number(v)?).map_err(|_| "minorFrameMicros too large")?,
            None => 1000,
        };
        if !(50..=100_000).contains(&minor_frame_us) {
            return Err("minorFrameMicros must be between 50 and 100000".into());
        }
        let debug_exit = root.attribute("debugExit") == Some("true");
        let net_restart_ms = match root.attribute("netRestartMillis") {
            Some(v) => u16::try_from(parse_number(v)?)
                .map_err(|_| "netRestartMillis must be at most 65535")?,
            None => 0,
        };
        let sinfo = match root.attribute("sinfo") {
            None | Some("v04") => Version::V04,
            Some("v05") => Version::V05,
            Some(v) => return Err(format!("sinfo='{v}': expected v04 or v05")),
        };
        let mut subjects = Vec::new();
        for s in root.children().filter(|c| c.is_element()) {
            if s.tag_name().name() != "subject" {
                return Err(format!("system: unexpected <{}>", s.tag_name().name()));
            }
            let name = s
                .attribute("name")
                .ok_or("subject without name")?
                .to_string();
            if name.is_empty() || name.len() > 63 {
                return Err(format!("subject name '{name}' must be 1..63 characters"));
            }
            let cspec = base.join(s.attribute("cspec").ok_or("subject without cspec")?);
            let mut d = SubjectDesc {
                name,
                cspec,
                bootparams: String::new(),
                memory: vec![],
                events: vec![],
            };
            for c in s.children().filter(|c| c.is_element()) {
                match c.tag_name().name() {
                    "bootparams" => d.bootparams = c.text().unwrap_or("").trim().to_string(),
                    "memory" => {
                        let logical = c.attribute("logical").ok_or("memory without logical")?;
                        let file = c.attribute("file").ok_or("memory without file")?;
                        d.memory.push((logical.to_string(), base.join(file)));
                    }
                    "event" => {
                        let id = parse_number(c.attribute("id").ok_or("event without id")?)?;
                        let id = u8::try_from(id)
                            .ok()
                            .filter(|&i| i < 64)
                            .ok_or("event id must be 0..63")?;
                        let logical = c
                            .attribute("logical")
                            .ok_or("event without logical")?
                            .to_string();
                        let action = match c.attribute("action") {
                            Some("exit") => Action::Exit,
                            Some("netnotify") => Action::NetNotify,
                            Some("yield") => Action::Yield,
                            other => {
                                return Err(format!(
                                    "event action {other:?}: expected exit, netnotify or yield"
                                ));
                            }
                        };
                        if d.events.iter().any(|e| e.0 == id || e.1 == logical) {
                            return Err(format!("duplicate event {id}/{logical}"));
                        }
                        d.events.push((id, logical, action));
                    }
                    other => return Err(format!("subject: unexpected <{other}>")),
                }
            }
            if d.events.is_empty() {
                d.events.push((0, "solo5_exit".into(), Action::Exit));
            }
            if subjects.iter().any(|o: &SubjectDesc| o.name == d.name) {
                return Err(format!("duplicate subject {}", d.name));
            }
            subjects.push(d);
        }
        if subjects.is_empty() {
            return Err("system has no subject".into());
        }
        Ok(SystemDesc {
            minor_frame_us,
            debug_exit,
            sinfo,
            net_restart_ms,
            subjects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_events() {
        let s = SystemDesc::parse(
            r#"<system debugExit="true"><subject name="a" cspec="a.xml"><bootparams> x y </bootparams>
               <memory logical="tls_cert" file="c.pem"/></subject>
               <subject name="b" cspec="b.xml"><event id="1" logical="n" action="netnotify"/></subject></system>"#,
            Path::new("/b"),
        )
        .unwrap();
        assert_eq!(s.minor_frame_us, 1000);
        assert!(s.debug_exit);
        assert_eq!(s.subjects[0].bootparams, "x y");
        assert_eq!(
            s.subjects[0].events,
            vec![(0, "solo5_exit".to_string(), Action::Exit)]
        );
        assert_eq!(s.subjects[0].memory[0].1, Path::new("/b/c.pem"));
        assert_eq!(s.subjects[1].events[0].2, Action::NetNotify);
        assert_eq!(s.net_restart_ms, 0);
        assert_eq!(s.sinfo, Version::V04);
        for (attr, version) in [
            ("v04", Some(Version::V04)),
            ("v05", Some(Version::V05)),
            ("v03", None),
        ] {
            let r = SystemDesc::parse(
                &format!(r#"<system sinfo="{attr}"><subject name="a" cspec="a.xml"/></system>"#),
                Path::new("/"),
            );
            assert_eq!(r.ok().map(|s| s.sinfo), version, "sinfo=\"{attr}\"");
        }
        assert!(SystemDesc::parse("<system/>", Path::new("/")).is_err());
        let r = SystemDesc::parse(
            r#"<system netRestartMillis="2000"><subject name="a" cspec="a.xml"/></system>"#,
            Path::new("/"),
        );
        assert_eq!(r.unwrap().net_restart_ms, 2000);
        assert!(
            SystemDesc::parse(
                r#"<system netRestartMillis="70000"><subject name="a" cspec="a.xml"/></system>"#,
                Path::new("/")
            )
            .is_err()
        );
        assert!(
            SystemDesc::parse(
                r#"<system><subject name="a" cspec="x"/><subject name="a" cspec="y"/></system>"#,
                Path::new("/")
            )
            .is_err()
        );
    }
}
