//! LOLWUT's random drawings (Schotter for version 5, the skyline for
//! version 6) compared with Redis's by shape: the same lines of the same
//! widths, made of the same kind of cells, and the same closing text.

use amber_tests::reply::show;
use amber_tests::{connect, differential_by};

/// A drawing with every Braille character as `b` and every colored cell
/// as `c` (the pixels are random; the layout is not).
fn shape(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply).into_owned();
    let text = text
        .replace("\x1b[0;30;40m \x1b[0m", "c")
        .replace("\x1b[0;90;100m \x1b[0m", "c")
        .replace("\x1b[0;37;47m \x1b[0m", "c")
        .replace("\x1b[0;97;107m \x1b[0m", "c");
    let braille: String = text
        .chars()
        .map(|c| {
            if ('\u{2800}'..='\u{28ff}').contains(&c) {
                'b'
            } else {
                c
            }
        })
        .collect();
    // The bulk header carries the length, which varies with the pixels
    // for version 6 (escapes) but not for version 5.
    braille.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn random_drawings_have_redis_shape() {
    differential_by("LOLWUT drawings", &[], |port| {
        let mut c = connect(port);
        let mut out = Vec::new();
        for args in [
            &["LOLWUT", "VERSION", "5"][..],
            &["LOLWUT", "VERSION", "5", "40", "6", "10"],
            &["LOLWUT", "VERSION", "5", "1", "1", "5"],
            &["LOLWUT", "VERSION", "6"],
            &["LOLWUT", "VERSION", "6", "30", "7"],
            &["LOLWUT", "VERSION", "6", "1", "1"],
        ] {
            let reply = c.cmd(args);
            assert!(reply.starts_with(b"$"), "{}", show(&reply));
            out.push(shape(&reply));
        }
        out
    });
}
