//! Rectification notice numbers (整改通知书编号), unique per area and year without any
//! coordination, so two phones offline never hand out the same number.
//!
//! A number is `{area}〔{year}〕{device}-{n}号`, e.g. `幸福街道〔2026〕0K-017号`: `area` is the
//! issuing office's short name, `device` a short code the server gives each phone when it
//! enrols (unique on that server, so unique within the area), and `n` counts the notices that
//! phone issued that year, from 1. Uniqueness needs no server round trip: each phone numbers
//! within its own code. Why not one sequence per area: phones issue notices offline, in front
//! of the shop owner, and a shared counter would need the network or a later renumbering of
//! notices already handed over on paper. The cost is that numbers of one area are not
//! consecutive across phones; people read them fine, and the device code tells who issued it.

/// Formats a notice number.
pub fn format_notice_no(area: &str, year: i32, device_code: &str, n: u32) -> String {
    format!("{area}〔{year}〕{device_code}-{n:03}号")
}

/// A short device code from the server's running device number: base 36, at least two
/// characters (`01`, ..., `0Z`, `10`, ...).
pub fn device_code(number: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut n = number;
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    while out.len() < 2 {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well_and_codes_are_short_and_distinct() {
        assert_eq!(
            format_notice_no("幸福街道", 2026, "0K", 17),
            "幸福街道〔2026〕0K-017号"
        );
        assert_eq!(device_code(1), "01");
        assert_eq!(device_code(35), "0Z");
        assert_eq!(device_code(36), "10");
        let codes: std::collections::HashSet<String> = (0..5000).map(device_code).collect();
        assert_eq!(codes.len(), 5000);
    }
}
