//! LOLWUT version 5 (`lolwut5.c`): Georg Nees's *Schotter*, squares that
//! rotate and shift more and more down the rows, in Braille characters.

use super::canvas::Canvas;
use super::{c_rand, long_arg};
use crate::cmd::connection::REDIS_VERSION;
use crate::cmd::CmdError;

/// glibc's `RAND_MAX`.
const RAND_MAX: f32 = 2147483647.0;

/// `LOLWUT VERSION 5 [columns] [squares-per-row] [squares-per-col]`.
pub fn command(own: &[&[u8]]) -> Result<Vec<u8>, CmdError> {
    let cols = long_arg(own, 0, 66, 1, 1000)?;
    let per_row = long_arg(own, 1, 8, 1, 200)?;
    let per_col = long_arg(own, 2, 12, 1, 200)?;
    let canvas = draw(cols as i32, per_row as i32, per_col as i32);
    let mut text = render(&canvas);
    text.extend_from_slice(
        format!("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {REDIS_VERSION}\n")
            .as_bytes(),
    );
    Ok(text)
}

/// `lwDrawSchotter`: the first two rows are straight, the others
/// randomly rotated and moved.
fn draw(cols: i32, per_row: i32, per_col: i32) -> Canvas {
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32 + (padding * 2) as f32) as i32;
    let mut canvas = Canvas::new(width, height, 0);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut angle = 0.0f32;
            if y > 1 {
                let r = || c_rand() as f32 / RAND_MAX / per_col as f32 * y as f32;
                let (mut r1, mut r2, mut r3) = (r(), r(), r());
                for v in [&mut r1, &mut r2, &mut r3] {
                    if c_rand() % 2 == 1 {
                        *v = -*v;
                    }
                }
                angle = r1;
                sx = (sx as f32 + r2 * side / 3.0) as i32;
                sy = (sy as f32 + r3 * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle, 1);
        }
    }
    canvas
}

/// Each 2×4 block of pixels as one Braille character (U+2800 + dots).
fn render(canvas: &Canvas) -> Vec<u8> {
    let mut text = Vec::new();
    let mut y = 0;
    while y < canvas.height {
        let mut x = 0;
        while x < canvas.width {
            let dots = [
                (0, 0),
                (0, 1),
                (0, 2),
                (1, 0),
                (1, 1),
                (1, 2),
                (0, 3),
                (1, 3),
            ];
            let byte = dots
                .iter()
                .enumerate()
                .filter(|(_, &(dx, dy))| canvas.get(x + dx, y + dy) != 0)
                .fold(0u32, |b, (bit, _)| b | 1 << bit);
            let mut buf = [0u8; 4];
            let c = char::from_u32(0x2800 + byte).unwrap_or(' ');
            text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            x += 2;
        }
        if y != canvas.height - 1 {
            text.push(b'\n');
        }
        y += 4;
    }
    text
}
