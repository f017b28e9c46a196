//! Metric points → rows: each vendor's (or gen_ai's) metric names mapped to counters and
//! tokens, one row per data point.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, NumberDataPoint, metric::Data, number_data_point,
};

use super::*;
use crate::agents::attrs::Unreadable;

/// One metric data point, whatever its type.
struct Point<'a> {
    attrs: &'a [KeyValue],
    start_ns: i64,
    time_ns: i64,
    value: Option<f64>,
    count: Option<i64>,
}

fn number_point(dp: &NumberDataPoint) -> Point<'_> {
    Point {
        attrs: &dp.attributes,
        start_ns: nanos(dp.start_time_unix_nano),
        time_ns: nanos(dp.time_unix_nano),
        value: match dp.value {
            Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
            Some(number_data_point::Value::AsDouble(d)) if d.is_finite() => Some(d),
            _ => None,
        },
        count: None,
    }
}

fn point_fact(fact: &MetricFact, reader: &Reader<'_>) -> Option<PointFact> {
    match fact {
        MetricFact::Counter(c) => Some(PointFact::Counter(*c)),
        MetricFact::CounterByAttr { attr, values } => {
            let v = reader.str(attr)?;
            values
                .iter()
                .find(|(name, _)| *name == v)
                .map(|(_, c)| PointFact::Counter(*c))
        }
        MetricFact::Tokens {
            type_attr,
            model_attr,
            types,
        } => {
            let t = reader.str(type_attr)?;
            let kinds = types.iter().find(|(name, _)| *name == t)?.1;
            let model = reader.str(model_attr).unwrap_or("unknown");
            Some(PointFact::Tokens {
                model: model.to_string(),
                kinds,
            })
        }
        MetricFact::Repository { .. } => None,
    }
}

/// Metric points → rows. Cumulative series are turned into increments by the writer,
/// which keeps each series' last point.
pub fn metrics(req: &ExportMetricsServiceRequest) -> Batch {
    let mut batch = Batch::new(Signal::Metrics);
    let mut sessions = Sessions::default();
    let unreadable = Unreadable::default();
    let cumulative = AggregationTemporality::Cumulative as i32;
    for rm in &req.resource_metrics {
        let resource = resource_attrs(&rm.resource);
        let service = get_str(resource, "service.name");
        let rdigest = resource_digest(&rm.resource);
        for sm in &rm.scope_metrics {
            let scope = sm.scope.as_ref().map_or("", |s| s.name.as_str());
            for metric in &sm.metrics {
                let agent = detect(&metric.name, scope, service);
                let fact = match agent {
                    Some(a) => a.metric(&metric.name),
                    None => genai::metric(&metric.name),
                };
                let emitter = match (agent, fact) {
                    (Some(a), _) => Some(Emitter::Vendor(a)),
                    (None, Some(_)) => Some(Emitter::GenAi),
                    (None, None) => None,
                };
                let (points, is_cumulative, is_gauge): (Vec<Point<'_>>, bool, bool) =
                    match &metric.data {
                        Some(Data::Sum(s)) => (
                            s.data_points.iter().map(number_point).collect(),
                            s.aggregation_temporality == cumulative,
                            false,
                        ),
                        Some(Data::Gauge(g)) => (
                            g.data_points.iter().map(number_point).collect(),
                            false,
                            true,
                        ),
                        Some(Data::Histogram(h)) => (
                            h.data_points
                                .iter()
                                .map(|dp| Point {
                                    attrs: &dp.attributes,
                                    start_ns: nanos(dp.start_time_unix_nano),
                                    time_ns: nanos(dp.time_unix_nano),
                                    value: Some(dp.sum.unwrap_or(0.0)).filter(|v| v.is_finite()),
                                    count: i64::try_from(dp.count).ok(),
                                })
                                .collect(),
                            h.aggregation_temporality == cumulative,
                            false,
                        ),
                        Some(Data::ExponentialHistogram(h)) => (
                            h.data_points
                                .iter()
                                .map(|dp| Point {
                                    attrs: &dp.attributes,
                                    start_ns: nanos(dp.start_time_unix_nano),
                                    time_ns: nanos(dp.time_unix_nano),
                                    value: Some(dp.sum.unwrap_or(0.0)).filter(|v| v.is_finite()),
                                    count: i64::try_from(dp.count).ok(),
                                })
                                .collect(),
                            h.aggregation_temporality == cumulative,
                            false,
                        ),
                        Some(Data::Summary(s)) => (
                            s.data_points
                                .iter()
                                .map(|dp| Point {
                                    attrs: &dp.attributes,
                                    start_ns: nanos(dp.start_time_unix_nano),
                                    time_ns: nanos(dp.time_unix_nano),
                                    value: Some(dp.sum).filter(|v| v.is_finite()),
                                    count: i64::try_from(dp.count).ok(),
                                })
                                .collect(),
                            true,
                            false,
                        ),
                        None => (Vec::new(), false, false),
                    };
                for p in points {
                    let Some(value) = p.value else {
                        batch.reject(|| {
                            format!(
                                "metric {:?}: data point without a finite value",
                                metric.name
                            )
                        });
                        continue;
                    };
                    let reader = Reader {
                        attrs: p.attrs,
                        resource,
                        rejected: &unreadable,
                    };
                    let mut session = None;
                    let mut pfact = None;
                    if let Some(emitter) = emitter {
                        session = session_key(&reader).and_then(|k| sessions.get(&mut batch, k));
                        if let Some(i) = session {
                            let info = &mut batch.sessions[i];
                            fill_identity(info, emitter, &reader);
                            super::note_workflows(info, &reader);
                            info.saw(p.time_ns);
                            // A cumulative series starts with the agent process, which
                            // for a CLI agent is the session's start.
                            if !is_gauge {
                                info.saw(p.start_ns);
                            }
                            if let Some(MetricFact::Repository { attr }) = fact
                                && info.repository.is_none()
                            {
                                info.repository = reader.str(attr).and_then(repository_name);
                            }
                        }
                        if session.is_some() && !is_gauge {
                            pfact = fact.and_then(|f| point_fact(f, &reader));
                        }
                    }
                    let mut key = Vec::with_capacity(64);
                    for kv in p.attrs {
                        kv.encode(&mut key).ok();
                    }
                    let series =
                        digest16(&[&rdigest, scope.as_bytes(), metric.name.as_bytes(), &key]);
                    batch.points.push(PointRow {
                        series,
                        start_ns: p.start_ns,
                        time_ns: p.time_ns,
                        session,
                        metric: metric.name.clone(),
                        value,
                        count: p.count,
                        cumulative: is_cumulative,
                        attrs: select_json(p.attrs, keep_agent_attr),
                        fact: pfact,
                    });
                    batch.accepted += 1;
                }
            }
        }
    }
    batch.unreadable_values = unreadable.total();
    batch.unreadable_keys = unreadable.take();
    batch
}
