//! LOLWUT's canvas (`lwCanvas` in `lolwut.c`): pixels of a few colors,
//! Bresenham lines and rotated squares, drawn with Redis's float
//! arithmetic so that unrotated squares land on the same pixels.

/// A width × height grid of colors; writes outside it are ignored.
#[derive(Debug, Clone)]
pub struct Canvas {
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background` (`lwCreateCanvas`).
    pub fn new(width: i32, height: i32, background: u8) -> Canvas {
        let (w, h) = (width.max(0) as usize, height.max(0) as usize);
        Canvas {
            width,
            height,
            pixels: vec![background; w.saturating_mul(h)],
        }
    }

    fn index(&self, x: i32, y: i32) -> Option<usize> {
        if x < 0 || x >= self.width || y < 0 || y >= self.height {
            return None;
        }
        Some(x as usize + y as usize * self.width as usize)
    }

    /// Sets a pixel (`lwDrawPixel`).
    pub fn set(&mut self, x: i32, y: i32, color: u8) {
        if let Some(p) = self.index(x, y).and_then(|i| self.pixels.get_mut(i)) {
            *p = color;
        }
    }

    /// A pixel's color, 0 outside the canvas (`lwGetPixel`).
    pub fn get(&self, x: i32, y: i32) -> u8 {
        self.index(x, y)
            .and_then(|i| self.pixels.get(i).copied())
            .unwrap_or(0)
    }

    /// A line from (x1, y1) to (x2, y2), Bresenham (`lwDrawLine`).
    pub fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32, color: u8) {
        let dx = (x2 - x1).abs();
        let dy = (y2 - y1).abs();
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, color);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square of side `size` centred on (x, y), rotated by `angle`
    /// radians (`lwDrawSquare`).
    // Redis divides by this truncated square root of 2, not `SQRT_2`: the
    // sizes must round as Redis's do.
    #[allow(clippy::approx_constant)]
    pub fn square(&mut self, x: i32, y: i32, size: f32, angle: f32, color: u8) {
        let size = ((f64::from(size) / 1.4142135623) as f32).round();
        let mut k = (std::f64::consts::FRAC_PI_4 + f64::from(angle)) as f32;
        let mut px = [0i32; 4];
        let mut py = [0i32; 4];
        for j in 0..4 {
            px[j] = (f64::from(k).sin() * f64::from(size) + f64::from(x)).round() as i32;
            py[j] = (f64::from(k).cos() * f64::from(size) + f64::from(y)).round() as i32;
            k = (f64::from(k) + std::f64::consts::FRAC_PI_2) as f32;
        }
        for j in 0..4 {
            let n = (j + 1) % 4;
            self.line(px[j], py[j], px[n], py[n], color);
        }
    }
}
