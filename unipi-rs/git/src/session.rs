//! The upload-pack conversation, independent of the transport: which answer the client
//! waits for, what it asks next, and the pack reader the answer to the fetch request feeds.
//!
//! The transport hands every byte of the server's answers to [`Session::on_bytes`]; when an
//! answer is complete the session says how to go on ([`Reaction`]). git:// sends the
//! reaction's request on the same connection; smart HTTP wraps it in a POST
//! (`smart_http.rs`).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::base::BaseObjects;
use crate::error::{Error, sanitize};
use crate::fetch::{FetchOptions, FetchPhase, Outcome, ProtocolChoice};
use crate::limits::Limits;
use crate::oid::ObjectId;
use crate::pack::{PackCounters, PackReader};
use crate::pktline::{Pkt, PktReader};
use crate::protocol::{
    self, Advertisement, Discovery, FetchResponse, LsRefs, ProtocolVersion, RefTarget,
    RequestParams, ResponseItem, V0Caps, V2Caps,
};
use crate::snapshot::{self, Stats};

/// What to do once the server's answer is complete.
#[derive(Debug)]
pub(crate) enum Reaction {
    /// Send this request (pkt-lines; smart HTTP posts them to `git-upload-pack`).
    Send(Vec<u8>),
    /// The fetch is over.
    Finish(Outcome),
    /// The incremental fetch could not be completed from what the server sent (`why`): start
    /// over with a full fetch.
    StartOverFull {
        /// What was missing.
        why: Error,
    },
}

/// The answer the client waits for, with the parser for it.
#[derive(Debug)]
enum Awaiting {
    /// The first answer: v2 capabilities or the v0 ref advertisement.
    Advertisement(Discovery),
    /// The v2 `ls-refs` answer.
    RefList { parser: LsRefs, caps: V2Caps },
    /// The answer to the fetch request, ending with the pack.
    Pack {
        response: FetchResponse,
        pack: Box<PackReader>,
        commit: ObjectId,
        /// The base the request named (an incremental fetch), if any.
        base: Option<Arc<BaseObjects>>,
    },
    /// Nothing more (after the pack, or after the fetch ended otherwise).
    Nothing,
}

/// The protocol half of a fetch: parses answers, builds requests, reads the pack.
#[derive(Debug)]
pub(crate) struct Session {
    pkt: PktReader,
    conversation: Conversation,
}

/// Everything of the session but the pkt-line buffer (borrowed separately while a packet is
/// handled).
#[derive(Debug)]
struct Conversation {
    awaiting: Awaiting,
    protocol: Option<ProtocolVersion>,
    choice: ProtocolChoice,
    wanted_ref: String,
    agent: String,
    no_progress: bool,
    limits: Limits,
    /// The commit being served (unchanged check).
    current: Option<ObjectId>,
    /// Its objects, for an incremental fetch.
    base: Option<Arc<BaseObjects>>,
    /// Pack counters kept once the pack reader is gone.
    counters: PackCounters,
}

/// What the server allows of an incremental fetch.
#[derive(Clone, Copy, Debug)]
struct PackSupport {
    /// Shallow boundaries (`shallow`, `deepen`): without them the server would assume the
    /// client has the base's history.
    shallow: bool,
    /// Thin packs (always in v2; a capability in v0).
    thin_pack: bool,
}

impl Session {
    /// A session fetching `wanted_ref` (`HEAD` or `refs/heads/<branch>`); `agent` is already
    /// free of spaces and control characters.
    pub fn new(wanted_ref: String, agent: String, opts: &FetchOptions) -> Session {
        Session {
            pkt: PktReader::new(opts.limits.max_pkt_line),
            conversation: Conversation {
                awaiting: Awaiting::Advertisement(Discovery::new(
                    &wanted_ref,
                    opts.limits.max_refs,
                )),
                protocol: None,
                choice: opts.protocol,
                wanted_ref,
                agent,
                no_progress: !opts.remote_progress,
                limits: opts.limits.clone(),
                current: opts.current.or(opts.base.as_ref().map(|b| b.commit())),
                base: opts.base.clone(),
                counters: PackCounters::default(),
            },
        }
    }

    /// A new answer starts (smart HTTP: a new response body); drops buffered bytes.
    pub fn answer_start(&mut self) {
        self.pkt.clear();
    }

    /// True while bytes of an incomplete pkt-line are buffered.
    pub fn has_partial_packet(&self) -> bool {
        !self.pkt.is_empty()
    }

    /// Takes bytes of the server's answers. Returns the reaction once an answer is complete;
    /// a second answer in the same bytes (one the client has not asked for yet) is an error,
    /// and bytes after the end of the fetch are ignored.
    pub fn on_bytes(&mut self, data: &[u8]) -> Result<Option<Reaction>, Error> {
        self.pkt.push(data);
        let mut reaction = None;
        while let Some(pkt) = self.pkt.next_pkt()? {
            match (self.conversation.on_pkt(pkt)?, &reaction) {
                (None, _) => {}
                (Some(r @ (Reaction::Finish(_) | Reaction::StartOverFull { .. })), None) => {
                    return Ok(Some(r));
                }
                (Some(r), None) => reaction = Some(r),
                (Some(_), Some(_)) => {
                    return Err(Error::Protocol(
                        "remote answered a request the client had not sent".into(),
                    ));
                }
            }
        }
        Ok(reaction)
    }

    /// The protocol version the server spoke, once known.
    pub fn protocol(&self) -> Option<ProtocolVersion> {
        self.conversation.protocol
    }

    /// Pack counters (zero before the pack starts).
    pub fn counters(&self) -> PackCounters {
        match &self.conversation.awaiting {
            Awaiting::Pack { pack, .. } => pack.counters(),
            _ => self.conversation.counters,
        }
    }

    /// Where the conversation is (the transport adds `Connecting` and `Done`).
    pub fn phase(&self) -> FetchPhase {
        match &self.conversation.awaiting {
            Awaiting::Advertisement(_) => FetchPhase::Discovering,
            Awaiting::RefList { .. } => FetchPhase::ListingRefs,
            Awaiting::Pack { pack, .. } if pack.counters().pack_bytes > 0 => {
                FetchPhase::ReceivingPack
            }
            Awaiting::Pack { .. } => FetchPhase::Negotiating,
            Awaiting::Nothing => FetchPhase::Done,
        }
    }

    /// The fetch failed: frees the pack reader (its counters are kept for [`Self::counters`]).
    pub fn abandon(&mut self) {
        self.conversation.counters = self.counters();
        self.conversation.awaiting = Awaiting::Nothing;
    }
}

impl Conversation {
    fn on_pkt(&mut self, pkt: Pkt<'_>) -> Result<Option<Reaction>, Error> {
        match &mut self.awaiting {
            Awaiting::Advertisement(parser) => match parser.on_pkt(pkt)? {
                Some(Advertisement::V2(caps)) => self.on_v2_caps(caps).map(Some),
                Some(Advertisement::V0 { caps, wanted }) => self.on_v0_refs(caps, wanted).map(Some),
                None => Ok(None),
            },
            Awaiting::RefList { parser, caps } => match parser.on_pkt(pkt)? {
                Some(target) => {
                    let caps = core::mem::take(caps);
                    self.on_v2_refs(&caps, target).map(Some)
                }
                None => Ok(None),
            },
            Awaiting::Pack {
                response,
                pack,
                base,
                ..
            } => {
                let incremental = base.is_some();
                let item = match response.on_pkt(pkt)? {
                    ResponseItem::PackData(data) => pack.feed(data).map(|()| None),
                    ResponseItem::Nothing => Ok(None),
                    ResponseItem::Progress(text) => {
                        log::debug!("remote: {}", sanitize(text));
                        Ok(None)
                    }
                    ResponseItem::End => self.on_pack_end(),
                };
                match item {
                    Err(why) if incremental && missing_object(&why) => {
                        self.awaiting = Awaiting::Nothing;
                        Ok(Some(Reaction::StartOverFull { why }))
                    }
                    other => other,
                }
            }
            Awaiting::Nothing => match pkt {
                Pkt::ResponseEnd => Ok(None),
                _ => Err(Error::Protocol("unexpected data from the remote".into())),
            },
        }
    }

    fn params(&self) -> RequestParams<'_> {
        RequestParams {
            agent: &self.agent,
            wanted_ref: &self.wanted_ref,
            no_progress: self.no_progress,
        }
    }

    fn on_v2_caps(&mut self, caps: V2Caps) -> Result<Reaction, Error> {
        check_object_format(caps.object_format.as_deref())?;
        if !caps.ls_refs {
            return Err(Error::MissingCapability("ls-refs"));
        }
        if !caps.fetch {
            return Err(Error::MissingCapability("fetch"));
        }
        self.protocol = Some(ProtocolVersion::V2);
        log::debug!("git remote speaks protocol v2");
        let mut body = Vec::new();
        protocol::v2_ls_refs(&mut body, &caps, &self.params())?;
        self.awaiting = Awaiting::RefList {
            parser: LsRefs::new(&self.wanted_ref, self.limits.max_refs),
            caps,
        };
        Ok(Reaction::Send(body))
    }

    fn on_v2_refs(&mut self, caps: &V2Caps, target: Option<RefTarget>) -> Result<Reaction, Error> {
        let target = target.ok_or_else(|| Error::RefNotFound {
            name: self.wanted_ref.clone(),
        })?;
        let support = PackSupport {
            shallow: caps.fetch_shallow,
            thin_pack: true,
        };
        self.request_pack(
            target,
            support,
            FetchResponse::v2(),
            |out, p, want, have| protocol::v2_fetch(out, caps, p, want, have),
        )
    }

    fn on_v0_refs(&mut self, caps: V0Caps, wanted: Option<RefTarget>) -> Result<Reaction, Error> {
        if self.choice == ProtocolChoice::V2 {
            return Err(Error::V2Unsupported);
        }
        check_object_format(caps.object_format.as_deref())?;
        self.protocol = Some(ProtocolVersion::V0);
        log::debug!("git remote speaks protocol v0/v1");
        let target = wanted.ok_or_else(|| Error::RefNotFound {
            name: self.wanted_ref.clone(),
        })?;
        let support = PackSupport {
            shallow: caps.shallow,
            thin_pack: caps.thin_pack,
        };
        self.request_pack(
            target,
            support,
            FetchResponse::v0(caps.shallow),
            |out, p, want, have| protocol::v0_request(out, &caps, p, want, have),
        )
    }

    /// What both protocol versions do once the wanted ref is known: finish if it still
    /// points at the commit being served, otherwise build the fetch request with `encode`
    /// (incremental when there is a base and the server allows it) and get ready for the
    /// pack.
    fn request_pack(
        &mut self,
        target: RefTarget,
        support: PackSupport,
        response: FetchResponse,
        encode: impl FnOnce(
            &mut Vec<u8>,
            &RequestParams<'_>,
            ObjectId,
            Option<ObjectId>,
        ) -> Result<(), Error>,
    ) -> Result<Reaction, Error> {
        let commit = target.commit();
        if let Some(branch) = &target.symref {
            log::debug!("remote {} is {branch}", self.wanted_ref);
        }
        if self.current == Some(commit) {
            log::debug!("git remote unchanged at {commit}");
            self.awaiting = Awaiting::Nothing;
            return Ok(Reaction::Finish(Outcome::Unchanged(commit)));
        }
        if !support.shallow {
            log::warn!("git remote does not support shallow fetches; fetching full history");
        }
        let base = match &self.base {
            Some(b) if !support.shallow => {
                log::info!(
                    "git: full fetch: the remote cannot send only what changed since {} (no shallow fetches)",
                    b.commit()
                );
                None
            }
            Some(b) if !support.thin_pack => {
                log::info!(
                    "git: full fetch: the remote cannot send only what changed since {} (no thin packs)",
                    b.commit()
                );
                None
            }
            other => other.clone(),
        };
        let mut body = Vec::new();
        encode(
            &mut body,
            &self.params(),
            commit,
            base.as_ref().map(|b| b.commit()),
        )?;
        self.awaiting = Awaiting::Pack {
            response,
            pack: Box::new(PackReader::new(self.limits.clone(), base.clone())),
            commit,
            base,
        };
        Ok(Reaction::Send(body))
    }

    fn on_pack_end(&mut self) -> Result<Option<Reaction>, Error> {
        let Awaiting::Pack {
            pack, commit, base, ..
        } = core::mem::replace(&mut self.awaiting, Awaiting::Nothing)
        else {
            return Err(Error::Usage("pack reader missing"));
        };
        pack.finish()?;
        let c = pack.counters();
        self.counters = c;
        let stats = Stats {
            pack_bytes: c.pack_bytes,
            objects: c.objects,
            deltas: c.deltas,
            inflated_bytes: c.inflated_bytes,
            peak_object_bytes: c.peak_bytes,
            snapshot_bytes: 0,
            protocol: self.protocol,
            incremental: base.is_some(),
            thin_deltas: c.thin_deltas,
            reused_objects: 0,
        };
        let objects = pack.into_objects();
        let snapshot = snapshot::build(&objects, base.as_deref(), commit, &self.limits, stats)?;
        drop(objects); // everything not in the snapshot is freed here
        let s = &snapshot.stats;
        log::debug!(
            "fetched {} ({} files, {} bytes, pack {} bytes, {} objects, {} thin deltas, {} objects reused)",
            snapshot.commit,
            snapshot.files.len(),
            s.snapshot_bytes,
            s.pack_bytes,
            s.objects,
            s.thin_deltas,
            s.reused_objects
        );
        if let Some(b) = &base
            && s.reused_objects == 0
            && s.thin_deltas == 0
        {
            log::info!(
                "git: the remote sent the whole tree of {}: it does not know {} (history rewritten?)",
                snapshot.commit,
                b.commit()
            );
        }
        Ok(Some(Reaction::Finish(Outcome::Fetched(snapshot))))
    }
}

/// Errors of an incremental fetch that a full fetch may not have: the server left out an
/// object it assumed the client had.
fn missing_object(e: &Error) -> bool {
    matches!(
        e,
        Error::ObjectMissing { .. } | Error::DeltaBaseMissing { base: Some(_), .. }
    )
}

fn check_object_format(format: Option<&str>) -> Result<(), Error> {
    match format {
        None | Some("sha1") => Ok(()),
        Some(other) => Err(Error::UnsupportedObjectFormat(String::from(other))),
    }
}
