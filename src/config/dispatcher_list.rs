//! Kamailio's `dispatcher.list` file (dispatcher README §6.1.2), so an
//! existing list can be pointed at with `list_file` instead of rewritten.
//!
//! One destination a line: `setid destination [flags [priority [attrs]]]`,
//! fields separated by spaces or tabs; blank lines and `#` comments are
//! skipped. `flags` is decimal or `0x` hex; `attrs` is `k=v;k=v` without
//! spaces. Unlike Kamailio, which silently ignores what it cannot read,
//! every malformed line is an error with its `line:column`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::error::{ConfigError, Location};
use super::schema::MAX_WEIGHT;

/// Flag 1: start inactive.
pub const FLAG_INACTIVE: u32 = 1;
/// Flag 2: trying.
pub const FLAG_TRYING: u32 = 2;
/// Flag 4: disabled by the administrator.
pub const FLAG_DISABLED: u32 = 4;
/// Flag 8: probe with OPTIONS.
pub const FLAG_PROBING: u32 = 8;
/// Flag 16: do not resolve the host at startup.
pub const FLAG_NODNS: u32 = 16;
/// Flag 32: never ping.
pub const FLAG_NOPING: u32 = 32;

/// One line of a dispatcher.list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatcherEntry {
    pub setid: u32,
    /// As written; checked when the config uses it.
    pub uri: String,
    /// Kamailio's state bitmask ([`FLAG_INACTIVE`] ...); 0 when absent.
    pub flags: u32,
    /// 0 when absent.
    pub priority: i32,
    /// The `weight` attr, 1..=65535.
    pub weight: Option<u32>,
    /// Every other attr, in key order (`duid`, `socket`, `my`...); a key
    /// without `=` has an empty value.
    pub attrs: BTreeMap<String, String>,
    /// 1-based line of the entry.
    pub line: usize,
    /// 1-based column of the URI.
    pub uri_column: usize,
}

impl DispatcherEntry {
    /// Flag 4: admin disabled.
    pub fn disabled(&self) -> bool {
        self.flags & FLAG_DISABLED != 0
    }
}

/// A malformed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListError {
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.reason)
    }
}

impl std::error::Error for ListError {}

/// Parses a whole dispatcher.list.
pub fn parse(text: &str) -> Result<Vec<DispatcherEntry>, ListError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(e) = parse_line(line, i + 1)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Reads and parses `path`; errors name the file.
pub fn load(path: &Path) -> Result<Vec<DispatcherEntry>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        location: Location::WholeFile {
            path: path.to_path_buf(),
        },
        key: String::new(),
        reason: format!("cannot read dispatcher list: {e}"),
    })?;
    parse(&text).map_err(|e| ConfigError {
        location: Location::File {
            path: path.to_path_buf(),
            line: e.line,
            column: e.column,
        },
        key: String::new(),
        reason: e.reason,
    })
}

/// A whitespace-separated field: its text and 1-based character column.
struct Field<'a> {
    text: &'a str,
    column: usize,
}

fn fields(line: &str) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (col, (i, c)) in line.char_indices().enumerate() {
        let ws = matches!(c, ' ' | '\t' | '\r');
        match (ws, start) {
            (true, Some((s, scol))) => {
                out.push(Field {
                    text: &line[s..i],
                    column: scol + 1,
                });
                start = None;
            }
            (false, None) => start = Some((i, col)),
            _ => {}
        }
    }
    if let Some((s, scol)) = start {
        out.push(Field {
            text: &line[s..],
            column: scol + 1,
        });
    }
    // A field starting with `#` begins a comment.
    if let Some(c) = out.iter().position(|f| f.text.starts_with('#')) {
        out.truncate(c);
    }
    out
}

fn parse_line(line: &str, n: usize) -> Result<Option<DispatcherEntry>, ListError> {
    let mut fs = fields(line);
    if fs.is_empty() {
        return Ok(None);
    }
    let err = |column: usize, reason: String| ListError {
        line: n,
        column,
        reason,
    };
    // As in Kamailio, `#` also ends the URI field (a URI escapes it as %23).
    if let Some(uri) = fs.get_mut(1) {
        if let Some(h) = uri.text.find('#') {
            uri.text = &uri.text[..h];
            fs.truncate(2);
        }
    }
    let set = &fs[0];
    if set.text.is_empty() || !set.text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            set.column,
            format!(
                "setid {:?}: expected a non-negative integer (line format: setid destination [flags [priority [attrs]]])",
                set.text
            ),
        ));
    }
    let setid = set
        .text
        .parse::<u32>()
        .map_err(|_| err(set.column, format!("setid {}: too large", set.text)))?;
    let Some(uri) = fs.get(1).filter(|f| !f.text.is_empty()) else {
        return Err(err(
            line.chars().count() + 1,
            format!("setid {setid}: missing destination URI"),
        ));
    };
    let mut entry = DispatcherEntry {
        setid,
        uri: uri.text.to_string(),
        flags: 0,
        priority: 0,
        weight: None,
        attrs: BTreeMap::new(),
        line: n,
        uri_column: uri.column,
    };
    if let Some(f) = fs.get(2) {
        entry.flags = parse_flags(f.text).ok_or_else(|| {
            err(
                f.column,
                format!(
                    "flags {:?}: expected an integer, decimal or 0x hex (1 inactive, 2 trying, 4 disabled, 8 probing, 16 no DNS, 32 no ping)",
                    f.text
                ),
            )
        })?;
    }
    if let Some(f) = fs.get(3) {
        entry.priority = parse_priority(f.text).ok_or_else(|| {
            err(
                f.column,
                format!("priority {:?}: expected an integer", f.text),
            )
        })?;
    }
    if let Some(f) = fs.get(4) {
        parse_attrs(f, &mut entry).map_err(|(col, reason)| err(col, reason))?;
    }
    if let Some(f) = fs.get(5) {
        return Err(err(
            f.column,
            format!(
                "unexpected {:?} after the attrs (attrs are k=v;k=v without spaces)",
                f.text
            ),
        ));
    }
    Ok(Some(entry))
}

fn parse_flags(s: &str) -> Option<u32> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() {
            return None;
        }
        return u32::from_str_radix(hex, 16).ok();
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_priority(s: &str) -> Option<i32> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `k=v;k=v`, values optionally in double quotes (which may hold `;`).
fn parse_attrs(f: &Field<'_>, entry: &mut DispatcherEntry) -> Result<(), (usize, String)> {
    let text = f.text;
    let mut items: Vec<(usize, &str)> = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                items.push((start, &text[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err((f.column, format!("attrs {text:?}: unterminated quote")));
    }
    items.push((start, &text[start..]));
    for (off, item) in items {
        let col = f.column + text[..off].chars().count();
        if item.is_empty() {
            continue;
        }
        let (k, v) = match item.find('=') {
            Some(eq) => (&item[..eq], &item[eq + 1..]),
            None => (item, ""),
        };
        if k.is_empty() {
            return Err((col, format!("attr {item:?}: empty name")));
        }
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        if k == "weight" {
            if entry.weight.is_some() {
                return Err((col, "attr weight given twice".into()));
            }
            let w = v
                .parse::<u32>()
                .ok()
                .filter(|w| (1..=MAX_WEIGHT).contains(w))
                .ok_or_else(|| {
                    (
                        col,
                        format!("attr weight={v:?}: expected an integer 1..={MAX_WEIGHT}"),
                    )
                })?;
            entry.weight = Some(w);
        } else if entry.attrs.insert(k.to_string(), v.to_string()).is_some() {
            return Err((col, format!("attr {k} given twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kamailio's own sample, `src/modules/dispatcher/doc/dispatcher.list`.
    const KAMAILIO_SAMPLE: &str = "\
# $Id$
# dispatcher destination sets
#

# line format
# setit(int) destination(sip uri) flags(int,opt) priority(int,opt) attributes(str,opt)

# proxies
2 sip:127.0.0.1:5080
2 sip:127.0.0.1:5082

# gateways
1 sip:127.0.0.1:7070
1 sip:127.0.0.1:7072
1 sip:127.0.0.1:7074
";

    #[test]
    fn kamailio_sample_file() {
        let l = parse(KAMAILIO_SAMPLE).unwrap();
        let got: Vec<(u32, &str, usize)> = l
            .iter()
            .map(|e| (e.setid, e.uri.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            [
                (2, "sip:127.0.0.1:5080", 9),
                (2, "sip:127.0.0.1:5082", 10),
                (1, "sip:127.0.0.1:7070", 13),
                (1, "sip:127.0.0.1:7072", 14),
                (1, "sip:127.0.0.1:7074", 15),
            ]
        );
        assert!(l
            .iter()
            .all(|e| e.flags == 0 && e.priority == 0 && e.attrs.is_empty()));
    }

    /// The example lines of dispatcher README §6.1.2.
    #[test]
    fn kamailio_readme_lines() {
        let l = parse(
            "1 sip:127.0.0.1:5080 0 0 duid=abc;socket=udp:127.0.0.1:5060;my=xyz;ping_from=sip:myproxy.com\n\
             2 sip:127.0.0.1:5080;transport=tcp 0 10 class=4;prefix=448;strip=2\n\
             1 sip:127.0.0.1:7070 0 0 duid=xyz;maxload=20\n\
             1 sip:127.0.0.1:7074\n",
        )
        .unwrap();
        assert_eq!(l.len(), 4);
        let a = &l[0];
        assert_eq!(a.attrs["duid"], "abc");
        assert_eq!(a.attrs["socket"], "udp:127.0.0.1:5060");
        assert_eq!(a.attrs["my"], "xyz");
        assert_eq!(a.attrs["ping_from"], "sip:myproxy.com");
        let b = &l[1];
        assert_eq!(b.setid, 2);
        assert_eq!(b.uri, "sip:127.0.0.1:5080;transport=tcp");
        assert_eq!(b.priority, 10);
        assert_eq!(b.attrs.len(), 3);
        assert_eq!(b.attrs["strip"], "2");
        assert_eq!(l[2].attrs["maxload"], "20");
        assert_eq!(l[3].uri_column, 3);
    }

    #[test]
    fn flags_weight_comments_and_spacing() {
        let l = parse(
            "  1\tsip:a.example.com  0x4  5 weight=50;duid=x  # trailing comment\n\
             \n\
             # 9 sip:commented\n\
             3 sip:b:5070#comment right after the URI\n\
             4 sip:c 12 -1 rweight=3;flag\r\n",
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].flags, 4);
        assert!(l[0].disabled());
        assert_eq!(l[0].priority, 5);
        assert_eq!(l[0].weight, Some(50));
        assert!(!l[0].attrs.contains_key("weight"));
        assert_eq!(l[0].attrs["duid"], "x");
        assert_eq!(l[0].uri_column, 5);
        assert_eq!(l[1].uri, "sip:b:5070");
        assert_eq!(l[2].flags, 12);
        assert!(l[2].disabled());
        assert_eq!(l[2].priority, -1);
        assert_eq!(l[2].attrs["rweight"], "3");
        assert_eq!(l[2].attrs["flag"], "");
        assert_eq!(l[2].line, 5);
    }

    #[test]
    fn quoted_attr_values() {
        let l = parse("1 sip:a 0 0 note=\"a;b\";duid=z\n").unwrap();
        assert_eq!(l[0].attrs["note"], "a;b");
        assert_eq!(l[0].attrs["duid"], "z");
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let e = |t: &str| parse(t).unwrap_err();
        let x = e("# ok\n1 sip:a\nx sip:b\n");
        assert_eq!((x.line, x.column), (3, 1));
        assert!(x.reason.contains("setid"), "{x}");

        let x = e("1\n");
        assert_eq!((x.line, x.column), (1, 2));
        assert!(x.reason.contains("missing destination"), "{x}");

        let x = e("1 sip:a 0xZZ\n");
        assert_eq!((x.line, x.column), (1, 9));
        assert!(x.reason.contains("flags"), "{x}");

        let x = e("1 sip:a 0 high\n");
        assert_eq!((x.line, x.column), (1, 11));
        assert!(x.reason.contains("priority"), "{x}");

        let x = e("1 sip:a 0 0 duid=a;weight=0\n");
        assert_eq!((x.line, x.column), (1, 20));
        assert!(x.reason.contains("weight"), "{x}");

        let x = e("1 sip:a 0 0 duid=a duid=b\n");
        assert_eq!((x.line, x.column), (1, 20));
        assert!(x.reason.contains("without spaces"), "{x}");

        let x = e("1 sip:a 0 0 =v\n");
        assert!(x.reason.contains("empty name"), "{x}");
        let x = e("1 sip:a 0 0 a=1;a=2\n");
        assert!(x.reason.contains("twice"), "{x}");
        let x = e("1 sip:a 0 0 a=\"1\n");
        assert!(x.reason.contains("quote"), "{x}");
        let x = e("99999999999 sip:a\n");
        assert!(x.reason.contains("too large"), "{x}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("sipfront-dl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("dispatcher.list");
        std::fs::write(&p, "1 sip:a\n2 sip:b 0 zz\n").unwrap();
        let e = load(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}:2:11: priority \"zz\": expected an integer", p.display())
        );
        let e = load(&dir.join("missing.list")).unwrap_err();
        assert!(e.to_string().contains("cannot read dispatcher list"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
