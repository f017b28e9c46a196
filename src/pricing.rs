//! Estimated cost from token counts, for agents that report none (Gemini CLI, Codex,
//! gen_ai SDKs). Prices are USD per million tokens, matched by the longest model-name
//! prefix, so dated snapshots (`claude-sonnet-4-5-20250929`) and previews
//! (`gemini-3-pro-preview`) take their family's price. A name no prefix matches is tried
//! again without a provider prefix (`models/`, `openai/`, Bedrock's
//! `us.anthropic.`).
//!
//! The built-in table holds the vendors' published list prices (standard tier, prompts
//! under the long-context threshold) as of [`BUILT_IN_AS_OF`]. A JSON file
//! (`--price-table`) adds to it and overrides it, entry by entry:
//! `{"model-prefix": {"input": 3.0, "output": 15.0, "cache_read": 0.3,
//! "cache_creation": 3.75}}`. A missing cache price is the input price.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::facts::Tokens;

/// When the built-in prices were last checked against the vendors' price lists.
pub const BUILT_IN_AS_OF: &str = "2026-06";

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

/// A price with cache reads and (Anthropic's) cache writes priced apart.
const fn p(input: f64, output: f64, cache_read: f64, cache_creation: f64) -> Price {
    Price {
        input,
        output,
        cache_read: Some(cache_read),
        cache_creation: Some(cache_creation),
    }
}

/// A price with discounted cache reads and no charge for writing the cache beyond the
/// input price (OpenAI, Google).
const fn c(input: f64, output: f64, cache_read: f64) -> Price {
    Price {
        input,
        output,
        cache_read: Some(cache_read),
        cache_creation: None,
    }
}

/// A price without a cache discount.
const fn flat(input: f64, output: f64) -> Price {
    Price {
        input,
        output,
        cache_read: None,
        cache_creation: None,
    }
}

/// List prices, USD per million tokens: input, output, cache read, cache write.
const BUILT_IN: &[(&str, Price)] = &[
    // Anthropic (platform.claude.com pricing): cache reads 0.1× input, 5-minute cache
    // writes 1.25×. Opus 4.5 and later cost $5/$25; Opus 4 and 4.1 kept $15/$75.
    ("claude-opus-4", p(5.0, 25.0, 0.5, 6.25)),
    ("claude-opus-4-0", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4-2025", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4@", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4-1", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-sonnet-4", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4", p(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-7-sonnet", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-3-5-sonnet", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-3-5-haiku", p(0.8, 4.0, 0.08, 1.0)),
    ("claude-3-opus", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-3-haiku", p(0.25, 1.25, 0.03, 0.3)),
    // Google (ai.google.dev Gemini API pricing, paid tier, prompts up to 200k tokens).
    ("gemini-3-pro", c(2.0, 12.0, 0.2)),
    ("gemini-3.1-pro", c(2.0, 12.0, 0.2)),
    ("gemini-3-flash", c(0.5, 3.0, 0.05)),
    ("gemini-3.1-flash-lite", c(0.25, 1.5, 0.025)),
    ("gemini-2.5-pro", c(1.25, 10.0, 0.125)),
    ("gemini-2.5-flash", c(0.3, 2.5, 0.03)),
    ("gemini-2.5-flash-lite", c(0.1, 0.4, 0.01)),
    ("gemini-2.0-flash", c(0.1, 0.4, 0.025)),
    ("gemini-2.0-flash-lite", flat(0.075, 0.3)),
    // OpenAI (platform.openai.com pricing, standard tier): Codex's models and the
    // common API models. Cache writes cost nothing extra.
    ("gpt-5", c(1.25, 10.0, 0.125)),
    ("gpt-5-codex", c(1.25, 10.0, 0.125)),
    ("gpt-5-mini", c(0.25, 2.0, 0.025)),
    ("gpt-5-nano", c(0.05, 0.4, 0.005)),
    ("gpt-5-pro", flat(15.0, 120.0)),
    ("gpt-5.1", c(1.25, 10.0, 0.125)),
    ("gpt-5.1-codex-mini", c(0.25, 2.0, 0.025)),
    ("gpt-5.2", c(1.75, 14.0, 0.175)),
    ("gpt-5.2-pro", flat(21.0, 168.0)),
    ("gpt-5.3-codex", c(1.75, 14.0, 0.175)),
    ("gpt-5.4", c(2.5, 15.0, 0.25)),
    ("gpt-5.4-mini", c(0.75, 4.5, 0.075)),
    ("gpt-5.4-nano", c(0.2, 1.25, 0.02)),
    ("gpt-5.5", c(5.0, 30.0, 0.5)),
    ("codex-mini", c(1.5, 6.0, 0.375)),
    ("gpt-4.1", c(2.0, 8.0, 0.5)),
    ("gpt-4.1-mini", c(0.4, 1.6, 0.1)),
    ("gpt-4.1-nano", c(0.1, 0.4, 0.025)),
    ("gpt-4o", c(2.5, 10.0, 1.25)),
    ("gpt-4o-2024-05-13", flat(5.0, 15.0)),
    ("gpt-4o-mini", c(0.15, 0.6, 0.075)),
    ("o1", c(15.0, 60.0, 7.5)),
    ("o1-mini", c(1.1, 4.4, 0.55)),
    ("o1-pro", flat(150.0, 600.0)),
    ("o3", c(2.0, 8.0, 0.5)),
    ("o3-mini", c(1.1, 4.4, 0.55)),
    ("o3-pro", flat(20.0, 80.0)),
    ("o4-mini", c(1.1, 4.4, 0.275)),
];

impl Default for PriceTable {
    /// The built-in table.
    fn default() -> Self {
        Self {
            prices: BUILT_IN.iter().map(|(m, p)| (m.to_string(), *p)).collect(),
        }
    }
}

impl PriceTable {
    /// The built-in table with a file's entries added (a new model prefix) or
    /// overriding (a built-in one).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading price table {}", path.display()))?;
        let file: BTreeMap<String, Price> = serde_json::from_str(&text)
            .with_context(|| format!("price table {} is not valid", path.display()))?;
        for (model, p) in &file {
            let parts = [
                Some(p.input),
                Some(p.output),
                p.cache_read,
                p.cache_creation,
            ];
            if parts
                .into_iter()
                .flatten()
                .any(|v| !v.is_finite() || v < 0.0)
            {
                anyhow::bail!(
                    "price table {}: the price of {model:?} must be a non-negative number",
                    path.display()
                );
            }
        }
        let mut table = Self::default();
        table.prices.extend(file);
        Ok(table)
    }

    /// The table `serve`, `report` and `sessions` use: the built-in one, with
    /// `--price-table`'s entries when a file is given.
    pub fn configured(path: Option<&Path>) -> anyhow::Result<Self> {
        match path {
            Some(p) => Self::load(p),
            None => Ok(Self::default()),
        }
    }

    fn longest_prefix(&self, model: &str) -> Option<&Price> {
        self.prices
            .iter()
            .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| p)
    }

    /// The price of a model: its longest matching prefix, else that of its name without
    /// a provider prefix.
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.longest_prefix(model)
            .or_else(|| self.longest_prefix(without_provider(model)?))
    }

    /// The models of `models` that have no price, in the order given.
    pub fn unpriced<'a>(&self, models: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        models
            .into_iter()
            .filter(|m| self.price(m).is_none())
            .collect()
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

/// A model name without its provider prefix — `models/gemini-2.5-pro`,
/// `openai/gpt-4o`, Bedrock's `us.anthropic.claude-sonnet-4-20250514-v1:0` — or `None`
/// when it has none.
fn without_provider(model: &str) -> Option<&str> {
    let bare = model.rsplit('/').next().unwrap_or(model);
    let bare = bare.split_once("anthropic.").map_or(bare, |(_, rest)| rest);
    (bare != model && !bare.is_empty()).then_some(bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(table: &PriceTable, model: &str) -> Option<f64> {
        table.price(model).map(|p| p.input)
    }

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

    #[test]
    fn current_agent_models_are_priced_by_family() {
        let table = PriceTable::default();
        for (model, usd) in [
            // Claude Code, dated snapshots and aliases.
            ("claude-sonnet-4-5-20250929", 3.0),
            ("claude-sonnet-4-6", 3.0),
            ("claude-haiku-4-5-20251001", 1.0),
            ("claude-opus-4-20250514", 15.0),
            ("claude-opus-4-0", 15.0),
            ("claude-opus-4-1-20250805", 15.0),
            ("claude-opus-4-1", 15.0),
            ("claude-opus-4-5-20251101", 5.0),
            ("claude-opus-4-6", 5.0),
            ("claude-3-5-haiku-20241022", 0.8),
            // Codex.
            ("gpt-5-codex", 1.25),
            ("gpt-5.1-codex-max", 1.25),
            ("gpt-5.1-codex-mini", 0.25),
            ("gpt-5.2-codex", 1.75),
            ("codex-mini-latest", 1.5),
            // Gemini CLI.
            ("gemini-2.5-pro", 1.25),
            ("gemini-3-pro-preview", 2.0),
            ("gemini-3-flash-preview", 0.5),
            // gen_ai SDKs: a shorter name never takes a longer one's price.
            ("gpt-4o-2024-08-06", 2.5),
            ("gpt-4o-mini-2024-07-18", 0.15),
            ("gpt-4.1-mini", 0.4),
            ("gpt-5", 1.25),
            ("gpt-5-mini-2025-08-07", 0.25),
            ("gpt-5-nano", 0.05),
            ("o3-2025-04-16", 2.0),
            ("o3-mini", 1.1),
            ("o4-mini", 1.1),
        ] {
            assert_eq!(input(&table, model), Some(usd), "{model}");
        }
        let sonnet = table.price("claude-sonnet-4-6").unwrap();
        assert_eq!(
            (sonnet.output, sonnet.cache_read, sonnet.cache_creation),
            (15.0, Some(0.3), Some(3.75))
        );
    }

    #[test]
    fn provider_prefixes_are_looked_through() {
        let table = PriceTable::default();
        assert_eq!(input(&table, "models/gemini-2.5-pro"), Some(1.25));
        assert_eq!(input(&table, "openai/gpt-4o-mini"), Some(0.15));
        assert_eq!(
            input(&table, "us.anthropic.claude-sonnet-4-20250514-v1:0"),
            Some(3.0)
        );
        assert_eq!(
            input(&table, "anthropic.claude-opus-4-1-20250805-v1:0"),
            Some(15.0)
        );
        assert_eq!(input(&table, "claude-opus-4@20250514"), Some(15.0));
        assert_eq!(input(&table, "acme/mystery"), None);
    }

    fn table_file(json: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.json");
        std::fs::write(&path, json).unwrap();
        (dir, path)
    }

    #[test]
    fn a_file_adds_to_and_overrides_the_built_in_prices() {
        let (_dir, path) = table_file(
            r#"{"glm-4.6": {"input": 0.6, "output": 2.2},
                "claude-sonnet-4": {"input": 2.0, "output": 10.0, "cache_read": 0.2}}"#,
        );
        let table = PriceTable::load(&path).unwrap();
        // The model the file adds is priced; a missing cache price is the input price.
        let t = Tokens([1_000_000, 1_000_000, 500_000, 0, 0]);
        let usd = table.cost("glm-4.6", &t).unwrap();
        assert!((usd - (0.6 + 2.2)).abs() < 1e-9, "{usd}");
        // Built-in models the file does not name keep their prices.
        for model in [
            "gemini-2.5-pro",
            "gpt-5.1-codex-max",
            "claude-haiku-4-5",
            "o3",
        ] {
            assert_eq!(
                table.price(model),
                PriceTable::default().price(model),
                "{model}"
            );
        }
        // The overridden family takes the file's price, for every model it prefixes.
        let sonnet = table.price("claude-sonnet-4-6").unwrap();
        assert_eq!((sonnet.input, sonnet.output), (2.0, 10.0));
        assert_eq!(sonnet.cache_creation, None);
        let usd = table.cost("claude-sonnet-4-5-20250929", &t).unwrap();
        assert!((usd - (0.5 * 2.0 + 0.5 * 0.2 + 10.0)).abs() < 1e-9, "{usd}");
        assert_eq!(
            PriceTable::configured(None)
                .unwrap()
                .price("claude-sonnet-4"),
            PriceTable::default().price("claude-sonnet-4")
        );
    }

    #[test]
    fn a_bad_file_is_refused_with_its_name() {
        let (_dir, path) = table_file(r#"{"m": {"input": -1.0, "output": 2.0}}"#);
        let err = PriceTable::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("\"m\"") && err.contains("non-negative"),
            "{err}"
        );
        let (_dir, path) = table_file(r#"{"m": {"output": 2.0}}"#);
        let err = format!("{:#}", PriceTable::load(&path).unwrap_err());
        assert!(err.contains("is not valid"), "{err}");
        let err = PriceTable::load(Path::new("/nonexistent/prices.json")).unwrap_err();
        assert!(err.to_string().contains("reading price table"));
    }

    #[test]
    fn unpriced_models_are_named() {
        let table = PriceTable::default();
        assert_eq!(
            table.unpriced(["claude-sonnet-4-6", "glm-4.6", "unknown"]),
            vec!["glm-4.6", "unknown"]
        );
    }
}
