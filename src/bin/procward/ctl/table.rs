//! The text `procward ctl` prints: the `list` table cut to the terminal's
//! width, and the words for times, sizes and ends.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The width used when it is neither in `COLUMNS` nor a terminal's.
pub(crate) const DEFAULT_WIDTH: usize = 100;

/// The fewest characters the command column is cut to, however narrow the
/// terminal: a table slightly wider than the screen beats no command.
const MIN_COMMAND: usize = 12;

/// The width to cut lines to: `COLUMNS` if set to a number, else the
/// terminal's on stdout, else [`DEFAULT_WIDTH`] (a pipe, a file).
pub(crate) fn terminal_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|columns| *columns > 0)
    {
        return columns;
    }
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(size) if size.ws_col > 0 => usize::from(size.ws_col),
        _ => DEFAULT_WIDTH,
    }
}

/// The `list` table: one line per handle of `handles` (the `list` op's
/// `detail` entries), in their order (oldest first, newest last), every
/// line at most `width` characters unless the columns before the command
/// already take more.
pub(crate) fn render_list(handles: &[Value], now: OffsetDateTime, width: usize) -> String {
    const HEADERS: [&str; 8] = [
        "HANDLE", "PID", "OWNER", "STATUS", "TIME", "EXIT", "OUTPUT", "COMMAND",
    ];
    let rows: Vec<[String; 8]> = handles
        .iter()
        .map(|handle| {
            [
                text(&handle["handle_id"]),
                handle["pid"]
                    .as_u64()
                    .map_or("-".to_owned(), |pid| pid.to_string()),
                handle["owner"].as_str().map_or("-".to_owned(), one_line),
                status(handle),
                run_time(handle, now),
                end(handle),
                bytes(output_bytes(handle)),
                handle["command"].as_str().map_or(String::new(), one_line),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (column, cell) in row.iter().enumerate() {
            widths[column] = widths[column].max(cell.chars().count());
        }
    }
    // Every column but the command, each followed by two spaces.
    let before: usize = widths[..7].iter().map(|width| width + 2).sum();
    let command_width = width.saturating_sub(before).max(MIN_COMMAND);
    let mut out = String::new();
    let header = HEADERS.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (column, cell) in row[..7].iter().enumerate() {
            // Numbers right-aligned, words left.
            if matches!(column, 1 | 6) {
                line.push_str(&format!("{cell:>w$}  ", w = widths[column]));
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[column]));
            }
        }
        line.push_str(&cut(&row[7], command_width));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `s` with every control character (a newline in a shell command, say)
/// shown as a space, so that a row stays one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `s` cut to `width` characters, the cut marked with `…`.
pub(crate) fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut kept: String = s.chars().take(width.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or("-").to_owned()
}

/// The status, with `paused` for a stopped tree and `(evicted)` for a
/// receipt.
pub(crate) fn status(handle: &Value) -> String {
    let mut status = text(&handle["status"]);
    if handle["paused"] == Value::Bool(true) {
        status = "paused".to_owned();
    }
    if handle["evicted"] == Value::Bool(true) {
        status.push_str(" (evicted)");
    }
    status
}

/// How the process ended: its exit code, or the signal that ended it by
/// name; `-` while it runs.
pub(crate) fn end(handle: &Value) -> String {
    if let Some(signal) = handle["signal"].as_i64() {
        return signal_name(signal);
    }
    match handle["exit_code"].as_i64() {
        Some(code) => code.to_string(),
        None => "-".to_owned(),
    }
}

fn signal_name(signal: i64) -> String {
    let name = match signal {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        10 => "USR1",
        11 => "SEGV",
        12 => "USR2",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        _ => return format!("SIG{signal}"),
    };
    format!("SIG{name}")
}

/// Bytes written to stdout and stderr together.
pub(crate) fn output_bytes(handle: &Value) -> u64 {
    let stdout = handle["stdout_total_bytes"].as_u64().unwrap_or(0);
    let stderr = handle["stderr_total_bytes"].as_u64().unwrap_or(0);
    stdout.saturating_add(stderr)
}

/// The run time: from the start to the end, or to `now` while it runs.
pub(crate) fn run_time(handle: &Value, now: OffsetDateTime) -> String {
    let Some(started) = timestamp(&handle["started_at"]) else {
        return "-".to_owned();
    };
    let until = timestamp(&handle["ended_at"]).unwrap_or(now);
    let seconds = (until - started).as_seconds_f64().max(0.0);
    duration(seconds)
}

fn timestamp(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

/// A duration as people read it: `0.42s`, `12s`, `3m05s`, `2h07m`, `3d04h`.
pub(crate) fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        return format!("{seconds:.2}s");
    }
    let whole = seconds as u64;
    match whole {
        0..60 => format!("{whole}s"),
        60..3600 => format!("{}m{:02}s", whole / 60, whole % 60),
        3600..86400 => format!("{}h{:02}m", whole / 3600, whole % 3600 / 60),
        _ => format!("{}d{:02}h", whole / 86400, whole % 86400 / 3600),
    }
}

/// A byte count: exact below 1 KiB, else with a binary unit (`1.5K`).
pub(crate) fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if count < 1024 {
        return count.to_string();
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn handle(command: &str) -> Value {
        json!({
            "handle_id": "psh-1a2b-7", "pid": 6699, "status": "exited",
            "command": command, "started_at": "2026-11-27T09:10:00Z",
            "ended_at": "2026-11-27T09:10:03.5Z", "exit_code": 0, "signal": null,
            "owner": "job", "stdout_total_bytes": 2000, "stderr_total_bytes": 48,
            "paused": false, "evicted": false,
        })
    }

    #[test]
    fn every_line_fits_the_width_and_the_command_is_cut() {
        let now = datetime!(2026-11-27 09:11:00 UTC);
        let long = format!("sh -c 'echo {}'", "x".repeat(300));
        let table = render_list(&[handle("true"), handle(&long)], now, 80);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("HANDLE"), "{table}");
        for line in &lines {
            assert!(line.chars().count() <= 80, "{line:?} is wider than 80");
        }
        assert!(lines[2].ends_with('…'), "{table}");
        assert!(
            lines[1].contains("3.50s") && lines[1].contains("2.0K"),
            "{table}"
        );
    }

    #[test]
    fn a_narrow_terminal_still_shows_some_command() {
        let now = datetime!(2026-11-27 09:11:00 UTC);
        let table = render_list(&[handle("make -j8 all install")], now, 20);
        assert!(
            table.lines().nth(1).unwrap().contains("make -j8 al…"),
            "{table}"
        );
    }

    #[test]
    fn a_newline_in_a_command_stays_on_its_row() {
        let now = datetime!(2026-11-27 09:11:00 UTC);
        let table = render_list(&[handle("echo a\necho b")], now, 200);
        assert_eq!(table.lines().count(), 2, "{table}");
    }

    #[test]
    fn ends_say_the_code_or_the_signal() {
        assert_eq!(end(&json!({"exit_code": 3, "signal": null})), "3");
        assert_eq!(end(&json!({"exit_code": -1, "signal": 15})), "SIGTERM");
        assert_eq!(end(&json!({"exit_code": -1, "signal": 40})), "SIG40");
        assert_eq!(end(&json!({"exit_code": null, "signal": null})), "-");
    }

    #[test]
    fn durations_and_sizes_read_short() {
        assert_eq!(duration(0.4242), "0.42s");
        assert_eq!(duration(42.9), "42s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7620.0), "2h07m");
        assert_eq!(duration(3.0 * 86400.0 + 4.0 * 3600.0), "3d04h");
        assert_eq!(bytes(0), "0");
        assert_eq!(bytes(1023), "1023");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(10 << 20), "10.0M");
    }
}
