//! The response header fields ACME relies on: `Replay-Nonce` (RFC 8555 §6.5.1),
//! `Location`, `Retry-After` (RFC 9110 §10.2.3), `Link` (RFC 8288) and `Content-Type`.
//! Every value is untrusted: a field that does not parse counts as absent, except where the
//! protocol cannot go on without it (the caller decides).

use alloc::string::String;
use alloc::vec::Vec;
use der::DateTime;

use crate::url::Url;

/// Response header fields as the driver parsed them: names in any case, raw values.
pub type Headers<'a> = [(&'a str, &'a [u8])];

/// The first value of the field `name` (case-insensitive), trimmed of surrounding
/// whitespace.
pub fn get<'a>(headers: &Headers<'a>, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim_ascii())
}

/// `Replay-Nonce`: base64url characters only, 1 to `max_len` bytes. Invalid values are
/// ignored, as RFC 8555 §6.5.1 requires.
pub fn replay_nonce(headers: &Headers<'_>, max_len: usize) -> Option<String> {
    let v = get(headers, "replay-nonce")?;
    let ok = !v.is_empty()
        && v.len() <= max_len
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    // Checked ASCII above, so the conversion cannot fail.
    ok.then(|| String::from_utf8(v.to_vec()).ok()).flatten()
}

/// `Location`, resolved against the request URL; `None` when absent or unusable.
pub fn location(headers: &Headers<'_>, base: &Url, max_len: usize) -> Option<Url> {
    let v = core::str::from_utf8(get(headers, "location")?).ok()?;
    base.join(v, max_len).ok()
}

/// `Retry-After` as a delay in seconds from now: either delta-seconds or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) compared with `now_unix`. A date in the past is a
/// delay of 0; anything unparsable is `None`.
pub fn retry_after(headers: &Headers<'_>, now_unix: u64) -> Option<u64> {
    let v = get(headers, "retry-after")?;
    if !v.is_empty() && v.iter().all(u8::is_ascii_digit) {
        // Saturate absurdly long delays instead of failing on them.
        let mut secs: u64 = 0;
        for d in v {
            secs = secs.saturating_mul(10).saturating_add(u64::from(d - b'0'));
        }
        return Some(secs);
    }
    let at = http_date(core::str::from_utf8(v).ok()?)?;
    Some(at.saturating_sub(now_unix))
}

/// Parses an IMF-fixdate (RFC 9110 §5.6.7) into Unix seconds. The obsolete RFC 850 and
/// asctime forms are not accepted (no ACME server sends them).
pub fn http_date(s: &str) -> Option<u64> {
    let mut parts = s.split(' ');
    let wkday = parts.next()?;
    let day = parts.next()?;
    let month = parts.next()?;
    let year = parts.next()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    if !matches!(
        wkday,
        "Mon," | "Tue," | "Wed," | "Thu," | "Fri," | "Sat," | "Sun,"
    ) {
        return None;
    }
    let num = |t: &str, len: usize| -> Option<u16> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let month = match month {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let mut hms = time.split(':');
    let (h, m, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() {
        return None;
    }
    let narrow = |v: u16| u8::try_from(v).ok();
    let dt = DateTime::new(
        num(year, 4)?,
        month,
        narrow(num(day, 2)?)?,
        narrow(num(h, 2)?)?,
        narrow(num(m, 2)?)?,
        narrow(num(sec, 2)?)?,
    )
    .ok()?;
    Some(dt.unix_duration().as_secs())
}

/// The targets of every `Link` field value with relation `rel` (RFC 8288: comma-separated
/// `<target>; param=value` items; `rel` may list several space-separated relations),
/// resolved against `base`. At most `max` are returned; unusable targets are skipped.
pub fn links(headers: &Headers<'_>, rel: &str, base: &Url, max_len: usize, max: usize) -> Vec<Url> {
    let mut out = Vec::new();
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("link") {
            continue;
        }
        let Ok(value) = core::str::from_utf8(value) else {
            continue;
        };
        let mut rest = value;
        while let Some(start) = rest.find('<') {
            if out.len() >= max {
                return out;
            }
            let after = &rest[start + 1..];
            let Some(end) = after.find('>') else { break };
            let target = &after[..end];
            let params_and_more = &after[end + 1..];
            // Parameters run to the next comma outside a quoted string.
            let mut in_quotes = false;
            let mut stop = params_and_more.len();
            for (i, c) in params_and_more.char_indices() {
                match c {
                    '"' => in_quotes = !in_quotes,
                    ',' if !in_quotes => {
                        stop = i;
                        break;
                    }
                    _ => {}
                }
            }
            let params = &params_and_more[..stop];
            if has_rel(params, rel)
                && let Ok(url) = base.join(target, max_len)
            {
                out.push(url);
            }
            rest = &params_and_more[stop..];
        }
    }
    out
}

fn has_rel(params: &str, rel: &str) -> bool {
    params.split(';').any(|p| {
        let Some((k, v)) = p.split_once('=') else {
            return false;
        };
        k.trim().eq_ignore_ascii_case("rel")
            && v.trim()
                .trim_matches('"')
                .split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case(rel))
    })
}

/// The media type of `Content-Type`, lowercased, without parameters.
pub fn content_type(headers: &Headers<'_>) -> Option<String> {
    let v = core::str::from_utf8(get(headers, "content-type")?).ok()?;
    let media = v.split(';').next().unwrap_or("").trim();
    (!media.is_empty()).then(|| media.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://ca.example:14000/dir", 2048).unwrap()
    }

    #[test]
    fn nonce() {
        let h: &Headers = &[("Replay-Nonce", b" abc-DEF_123 ")];
        assert_eq!(replay_nonce(h, 256).as_deref(), Some("abc-DEF_123"));
        for bad in [&b""[..], b"a b", b"a+b", b"a=", b"\xff"] {
            assert_eq!(replay_nonce(&[("replay-nonce", bad)], 256), None);
        }
        assert_eq!(replay_nonce(&[("replay-nonce", b"aaaa")], 3), None);
        assert_eq!(replay_nonce(&[], 256), None);
    }

    #[test]
    fn location_resolves() {
        let b = base();
        assert_eq!(
            location(&[("LOCATION", b"/order/1")], &b, 2048)
                .unwrap()
                .as_str(),
            "https://ca.example:14000/order/1"
        );
        assert!(location(&[("location", b"http://x/")], &b, 2048).is_none());
        assert!(location(&[("location", b"\xff")], &b, 2048).is_none());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after(&[("Retry-After", b"120")], 0), Some(120));
        assert_eq!(
            retry_after(&[("Retry-After", b"99999999999999999999999")], 0),
            Some(u64::MAX)
        );
        // 784111777 = Sun, 06 Nov 1994 08:49:37 GMT
        let h: &Headers = &[("retry-after", b"Sun, 06 Nov 1994 08:49:37 GMT")];
        assert_eq!(retry_after(h, 784_111_777 - 30), Some(30));
        assert_eq!(retry_after(h, 784_111_777 + 30), Some(0));
        for bad in [
            &b""[..],
            b"-1",
            b"1.5",
            b"Sunday, 06-Nov-94 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 1994",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 31 Feb 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 25:49:37 GMT",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT x",
            b"Xyz, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1969 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49 GMT",
            b"Sun, 06 Nov 1994 08:49:37:1 GMT",
        ] {
            assert_eq!(retry_after(&[("retry-after", bad)], 0), None, "{bad:?}");
        }
    }

    #[test]
    fn link_relations() {
        let b = base();
        let h: &Headers = &[
            ("Link", b"<https://ca.example:14000/dir>;rel=\"index\""),
            (
                "link",
                b"<https://ca.example:14000/cert/1/1>;rel=\"alternate\", </cert/1/2>; rel=alternate",
            ),
            ("Link", b"<https://ca.example/x,y>; title=\"a, b\"; rel=\"up alternate\""),
            ("Link", b"<http://insecure/>;rel=alternate, <unterminated"),
        ];
        let alts: Vec<_> = links(h, "alternate", &b, 2048, 10)
            .into_iter()
            .map(|u| String::from(u.as_str()))
            .collect();
        assert_eq!(
            alts,
            [
                "https://ca.example:14000/cert/1/1",
                "https://ca.example:14000/cert/1/2",
                "https://ca.example/x,y",
            ]
        );
        assert_eq!(links(h, "alternate", &b, 2048, 1).len(), 1);
        assert_eq!(links(h, "index", &b, 2048, 10).len(), 1);
        assert!(links(h, "next", &b, 2048, 10).is_empty());
    }

    #[test]
    fn media_types() {
        assert_eq!(
            content_type(&[("content-type", b"Application/JSON; charset=utf-8")]).as_deref(),
            Some("application/json")
        );
        assert_eq!(content_type(&[("content-type", b" ; x")]), None);
        assert_eq!(content_type(&[]), None);
    }
}
