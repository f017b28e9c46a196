//! Sets of line numbers kept as ranges: what coverage reports, line records and the
//! store hold, so that a report naming a million lines in one Go block is one range in
//! memory, one range in the database, and never a million entries.
//!
//! A [`LineSet`] is ascending, disjoint inclusive `(start, end)` ranges, touching ranges
//! joined; its stored form is the text `"1-5,8,10-20"` ([`LineSet::encode`],
//! [`LineSet::decode`]). A [`LineSetBuilder`] takes lines and ranges in any order and
//! keeps at most about twice the ranges of the set it builds (it compacts as it goes), so
//! building costs O(n log n) for n ranges given, whatever their order.

use std::fmt::Write as _;

/// Ascending, disjoint, non-touching inclusive line ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSet {
    ranges: Vec<(u32, u32)>,
}

impl LineSet {
    /// The set of these ranges (any order, overlapping or not); a range whose end is
    /// before its start is no lines.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u32, u32)>) -> LineSet {
        let mut b = LineSetBuilder::default();
        for (a, z) in ranges {
            b.insert_range(a, z);
        }
        b.build()
    }

    /// The set of these lines (any order, repeats allowed).
    pub fn from_lines(lines: impl IntoIterator<Item = u32>) -> LineSet {
        LineSet::from_ranges(lines.into_iter().map(|l| (l, l)))
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// How many lines the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, line: u32) -> bool {
        // The last range starting at or before `line`.
        let i = self.ranges.partition_point(|&(a, _)| a <= line);
        i > 0 && self.ranges[i - 1].1 >= line
    }

    /// The line numbers, ascending (as many as [`LineSet::len`]: iterate, do not collect,
    /// unless the set is known to be small).
    pub fn lines(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    /// Lines in either set.
    pub fn union(&self, other: &LineSet) -> LineSet {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len() + other.ranges.len());
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() || j < other.ranges.len() {
            let next = match (self.ranges.get(i), other.ranges.get(j)) {
                (Some(a), Some(b)) if a.0 <= b.0 => {
                    i += 1;
                    *a
                }
                (_, Some(b)) => {
                    j += 1;
                    *b
                }
                (Some(a), None) => {
                    i += 1;
                    *a
                }
                (None, None) => break,
            };
            push_joined(&mut out, next);
        }
        LineSet { ranges: out }
    }

    /// Lines in this set and not in `other`.
    pub fn difference(&self, other: &LineSet) -> LineSet {
        let mut out = Vec::with_capacity(self.ranges.len());
        let mut j = 0;
        for &(a, b) in &self.ranges {
            let mut start = a;
            // Skip the ranges of `other` that end before this one starts.
            while j < other.ranges.len() && other.ranges[j].1 < start {
                j += 1;
            }
            let mut k = j;
            let mut open = true;
            while k < other.ranges.len() && other.ranges[k].0 <= b {
                let (oa, ob) = other.ranges[k];
                if oa > start {
                    out.push((start, oa - 1));
                }
                if ob >= b {
                    open = false;
                    break;
                }
                start = ob + 1;
                k += 1;
            }
            if open {
                out.push((start, b));
            }
        }
        LineSet { ranges: out }
    }

    /// The stored form: `"1-5,8,10-20"` (`""` for no lines).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for &(a, b) in &self.ranges {
            if !out.is_empty() {
                out.push(',');
            }
            let _ = if a == b {
                write!(out, "{a}")
            } else {
                write!(out, "{a}-{b}")
            };
        }
        out
    }

    /// The inverse of [`LineSet::encode`]; parts that cannot be read are skipped (the
    /// store wrote them, so there are none unless the database was edited by hand).
    pub fn decode(s: &str) -> LineSet {
        let mut b = LineSetBuilder::default();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (x, y) = part.split_once('-').unwrap_or((part, part));
            if let (Ok(x), Ok(y)) = (x.parse::<u32>(), y.parse::<u32>()) {
                b.insert_range(x, y);
            }
        }
        b.build()
    }
}

/// Appends a range to ascending-by-start ranges, joining it to the last when they
/// overlap or touch.
fn push_joined(out: &mut Vec<(u32, u32)>, (a, b): (u32, u32)) {
    match out.last_mut() {
        Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
        _ => out.push((a, b)),
    }
}

/// Builds a [`LineSet`] from lines and ranges given in any order.
#[derive(Debug, Clone, Default)]
pub struct LineSetBuilder {
    ranges: Vec<(u32, u32)>,
    /// `ranges[..compacted]` is a [`LineSet`]'s ranges; the rest are as given.
    compacted: usize,
}

/// Ranges a builder holds beyond twice its compacted ones before it compacts.
const SLACK: usize = 1024;

impl LineSetBuilder {
    pub fn insert(&mut self, line: u32) {
        self.insert_range(line, line);
    }

    /// Adds the lines `a..=b` (none when `b < a`).
    pub fn insert_range(&mut self, a: u32, b: u32) {
        if b < a {
            return;
        }
        // Lines in ascending order (the usual case) extend the last range.
        match self.ranges.last_mut() {
            Some(last) if a >= last.0 && a <= last.1.saturating_add(1) => {
                last.1 = last.1.max(b);
                return;
            }
            _ => self.ranges.push((a, b)),
        }
        if self.ranges.len() > 2 * self.compacted + SLACK {
            self.compact();
        }
    }

    /// Ranges held now: what the builder costs in memory.
    pub fn held(&self) -> usize {
        self.ranges.len()
    }

    fn compact(&mut self) {
        self.ranges.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &r in &self.ranges {
            push_joined(&mut out, r);
        }
        self.ranges = out;
        self.compacted = self.ranges.len();
    }

    pub fn build(mut self) -> LineSet {
        if self.compacted != self.ranges.len() {
            self.compact();
        }
        self.ranges.shrink_to_fit();
        LineSet {
            ranges: self.ranges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_from_any_order_joining_touching_ranges() {
        let s = LineSet::from_ranges([(10, 20), (1, 3), (4, 5), (8, 8), (15, 30), (7, 6)]);
        assert_eq!(s.ranges(), &[(1, 5), (8, 8), (10, 30)]);
        assert_eq!(s.len(), 5 + 1 + 21);
        assert!(s.contains(1) && s.contains(5) && s.contains(8) && s.contains(30));
        assert!(!s.contains(0) && !s.contains(6) && !s.contains(9) && !s.contains(31));
        let l = LineSet::from_lines([5, 3, 4, 9, 3]);
        assert_eq!(l.ranges(), &[(3, 5), (9, 9)]);
        assert_eq!(l.lines().collect::<Vec<_>>(), vec![3, 4, 5, 9]);
    }

    #[test]
    fn a_builder_given_lines_in_reverse_holds_few_ranges() {
        let mut b = LineSetBuilder::default();
        let mut most = 0;
        for l in (1..=200_000u32).rev() {
            b.insert(l);
            most = most.max(b.held());
        }
        // Compaction keeps it at most twice the built set's ranges plus the slack.
        assert!(most <= 2 + SLACK + 1, "held {most}");
        assert_eq!(b.build().ranges(), &[(1, 200_000)]);

        // Every other line, shuffled by a stride: the set itself has 50,000 ranges.
        let mut b = LineSetBuilder::default();
        let mut most = 0;
        for i in 0..50_000u32 {
            let l = (i * 7919 % 50_000) * 2 + 1;
            b.insert(l);
            most = most.max(b.held());
        }
        let s = b.build();
        assert_eq!(s.ranges().len(), 50_000);
        assert!(most <= 2 * 50_000 + SLACK, "held {most}");
    }

    #[test]
    fn union_and_difference() {
        let a = LineSet::from_ranges([(1, 10), (20, 30), (40, 40)]);
        let b = LineSet::from_ranges([(5, 12), (13, 13), (25, 26), (35, 50)]);
        assert_eq!(a.union(&b).ranges(), &[(1, 13), (20, 30), (35, 50)]);
        assert_eq!(a.difference(&b).ranges(), &[(1, 4), (20, 24), (27, 30)]);
        assert_eq!(b.difference(&a).ranges(), &[(11, 13), (35, 39), (41, 50)]);
        assert_eq!(a.difference(&LineSet::default()), a);
        assert!(a.difference(&a).is_empty());
        assert_eq!(LineSet::default().union(&a), a);
        let edge = LineSet::from_ranges([(u32::MAX - 1, u32::MAX)]);
        assert_eq!(edge.len(), 2);
        assert!(
            edge.difference(&LineSet::from_lines([u32::MAX]))
                .contains(u32::MAX - 1)
        );
    }

    #[test]
    fn stored_form_round_trips_and_skips_what_it_cannot_read() {
        let s = LineSet::from_lines([1, 2, 3, 5, 7, 8, 100]);
        assert_eq!(s.encode(), "1-3,5,7-8,100");
        assert_eq!(LineSet::decode(&s.encode()), s);
        assert_eq!(LineSet::default().encode(), "");
        assert!(LineSet::decode("").is_empty());
        assert_eq!(LineSet::decode("x,3-y,4,9-7").ranges(), &[(4, 4)]);
        // A million lines are a few bytes.
        assert_eq!(LineSet::from_ranges([(1, 1_000_000)]).encode(), "1-1000000");
    }
}
