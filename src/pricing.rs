//! Estimated cost from token counts, for agents that report none (Gemini CLI, Codex,
//! gen_ai SDKs). Prices are USD per million tokens, matched by the longest model-name
//! prefix. The built-in table holds list prices as published by the vendors; a JSON file
//! (`--price-table`) replaces it: `{"model-prefix": {"input": 3.0, "output": 15.0,
//! "cache_read": 0.3, "cache_creation": 3.75}}`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::facts::Tokens;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_read: Option<f64>,
    #[serde(default)]
    pub cache_creation: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

const fn p(input: f64, output: f64, cache_read: f64, cache_creation: f64) -> Price {
    Price {
        input,
        output,
        cache_read: Some(cache_read),
        cache_creation: Some(cache_creation),
    }
}

const BUILT_IN: &[(&str, Price)] = &[
    ("claude-opus-4", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4-5", p(5.0, 25.0, 0.5, 6.25)),
    ("claude-sonnet-4", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4", p(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-5-haiku", p(0.8, 4.0, 0.08, 1.0)),
    ("gemini-3-pro", p(2.0, 12.0, 0.2, 2.0)),
    ("gemini-2.5-pro", p(1.25, 10.0, 0.125, 1.25)),
    ("gemini-2.5-flash", p(0.3, 2.5, 0.03, 0.3)),
    ("gemini-2.5-flash-lite", p(0.1, 0.4, 0.01, 0.1)),
    ("gpt-5", p(1.25, 10.0, 0.125, 1.25)),
    ("gpt-5-mini", p(0.25, 2.0, 0.025, 0.25)),
    ("gpt-5.1-codex-mini", p(0.25, 2.0, 0.025, 0.25)),
    ("gpt-4.1", p(2.0, 8.0, 0.5, 2.0)),
    ("o3", p(2.0, 8.0, 0.5, 2.0)),
];

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            prices: BUILT_IN.iter().map(|(m, p)| (m.to_string(), *p)).collect(),
        }
    }
}

impl PriceTable {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading price table {}", path.display()))?;
        let prices: BTreeMap<String, Price> = serde_json::from_str(&text)
            .with_context(|| format!("price table {} is not valid", path.display()))?;
        Ok(Self { prices })
    }

    pub fn price(&self, model: &str) -> Option<&Price> {
        self.prices
            .iter()
            .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| p)
    }

    /// Cost of one model's normalised tokens, or `None` when the model has no price.
    pub fn cost(&self, model: &str, t: &Tokens) -> Option<f64> {
        let p = self.price(model)?;
        let [input, output, cache_read, cache_creation, _reasoning] = t.0.map(|v| v as f64);
        let uncached = (input - cache_read - cache_creation).max(0.0);
        let usd = uncached * p.input
            + cache_read * p.cache_read.unwrap_or(p.input)
            + cache_creation * p.cache_creation.unwrap_or(p.input)
            + output * p.output;
        Some(usd / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_cache_is_priced_apart() {
        let table = PriceTable::default();
        assert_eq!(table.price("gemini-2.5-flash-lite").unwrap().input, 0.1);
        assert_eq!(table.price("gemini-2.5-flash-001").unwrap().input, 0.3);
        assert!(table.price("mystery-model").is_none());
        // 1M input of which 0.5M cache reads, 1M output.
        let t = Tokens([1_000_000, 1_000_000, 500_000, 0, 0]);
        let usd = table.cost("claude-sonnet-4-6", &t).unwrap();
        assert!((usd - (0.5 * 3.0 + 0.5 * 0.3 + 15.0)).abs() < 1e-9, "{usd}");
    }
}
