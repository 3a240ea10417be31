//! Report output: SVG figures ([`plot`]), captioned image grids ([`grid`], drawn with the bitmap font
//! [`font`]), image renderings ([`hog`]) and the self-contained HTML report ([`html`]).

pub mod font;
pub mod grid;
pub mod hog;
pub mod html;
pub mod plot;
