//! LOLWUT version 6 (`lolwut6.c`): a city skyline in the four grays of a
//! terminal, after the parallax backgrounds of 8-bit games.

use super::canvas::Canvas;
use super::{c_rand, long_arg};
use crate::cmd::connection::REDIS_VERSION;
use crate::cmd::CmdError;

/// `LOLWUT VERSION 6 [columns] [rows]`.
pub fn command(own: &[&[u8]]) -> Result<Vec<u8>, CmdError> {
    let cols = long_arg(own, 0, 80, 1, 1000)?;
    let rows = long_arg(own, 1, 20, 1, 1000)?;
    let mut canvas = Canvas::new(cols as i32, rows as i32, 3);
    skyline(&mut canvas);
    let mut text = render(&canvas);
    text.extend_from_slice(
        format!(
            "\nDedicated to the 8 bit game developers of past and present.\n\
             Original 8 bit image from Plaguemon by hikikomori. Redis ver. {REDIS_VERSION}\n"
        )
        .as_bytes(),
    );
    Ok(text)
}

/// One pixel per character, as foreground and background color escapes.
fn render(canvas: &Canvas) -> Vec<u8> {
    let mut text = Vec::new();
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            let escape = match canvas.get(x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            text.extend_from_slice(format!("\x1b[{escape} \x1b[0m").as_bytes());
        }
        if y != canvas.height - 1 {
            text.push(b'\n');
        }
    }
    text
}

/// A building (`struct skyscraper`).
struct Skyscraper {
    xoff: i32,
    width: i32,
    height: i32,
    windows: bool,
    color: u8,
}

/// `generateSkyscraper`: the roof two pixels narrower on each side,
/// windows of random grays two pixels wide.
fn skyscraper(canvas: &mut Canvas, s: &Skyscraper) {
    let start_y = canvas.height - 1;
    let end_y = start_y - s.height + 1;
    let mut y = start_y;
    while y >= end_y {
        for x in s.xoff..s.xoff + s.width {
            if y == end_y && (x <= s.xoff + 1 || x >= s.xoff + s.width - 2) {
                continue;
            }
            let mut color = s.color;
            if s.windows
                && x > s.xoff + 1
                && x < s.xoff + s.width - 2
                && y > end_y + 1
                && y < start_y - 1
            {
                let relx = x - (s.xoff + 1);
                let rely = y - (end_y + 1);
                if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                    loop {
                        color = (1 + c_rand() % 2) as u8;
                        if color != s.color {
                            break;
                        }
                    }
                    if relx % 2 != 0 {
                        color = canvas.get(x - 1, y);
                    }
                }
            }
            canvas.set(x, y, color);
        }
        y -= 1;
    }
}

/// `generateSkyline`: two rows of plain buildings behind, then one with
/// windows in front.
fn skyline(canvas: &mut Canvas) {
    let h = canvas.height;
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < canvas.width {
            offset += c_rand() % 8;
            let width = 10 + c_rand() % 9;
            let height = if color == 2 {
                h / 2 + c_rand() % h / 2
            } else {
                h / 2 + c_rand() % h / 3
            };
            let s = Skyscraper {
                xoff: offset,
                width,
                height,
                windows: false,
                color,
            };
            skyscraper(canvas, &s);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < canvas.width {
        offset += c_rand() % 8;
        let mut width = 5 + c_rand() % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let s = Skyscraper {
            xoff: offset,
            width,
            height: h / 3 + c_rand() % h / 2,
            windows: true,
            color: 0,
        };
        skyscraper(canvas, &s);
        offset += width + 5;
    }
}
