//! Help for a first-time reader (aimed at 12–15-year-olds): the glossary of the words the page
//! uses (`glossary`), a short "What am I looking at?" on every view (`about`), and a guided tour
//! through Generate → Inspect → Train (`tour`).

pub mod about;
pub mod glossary;
pub mod tour;

pub use about::About;
pub use glossary::{Glossary, Term};
pub use tour::{Tour, TourState};
