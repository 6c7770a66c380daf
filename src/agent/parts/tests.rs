use serde_json::json;

use super::*;
use crate::agent::tools::ToolOutput;

fn parts(outs: Vec<Out>) -> Vec<Value> {
    outs.into_iter().filter_map(|o| if let Out::Part(p) = o { Some(p) } else { None }).collect()
}

#[test]
fn shapes_match_the_reference_capture() {
    let mut m = PartMapper::new("ses_1");
    let step = parts(m.map(&Report::StepStart { step: 0, message_id: "msg_1".into(), part: "prt_s".into(), snapshot: None }));
    assert_eq!(step[0]["type"], "step-start");
    assert_eq!((step[0]["messageID"].as_str(), step[0]["sessionID"].as_str()), (Some("msg_1"), Some("ses_1")));

    let open = parts(m.map(&Report::Open { part: "prt_r".into(), kind: Streamed::Reasoning, start: 5 }));
    assert_eq!(open[0], json!({"id": "prt_r", "messageID": "msg_1", "sessionID": "ses_1", "type": "reasoning", "text": "", "time": {"start": 5}}));
    let delta = m.map(&Report::Delta { part: "prt_r".into(), kind: Streamed::Reasoning, delta: "I should ".into() });
    assert_eq!(delta, vec![Out::Delta { message_id: "msg_1".into(), part_id: "prt_r".into(), field: "text", delta: "I should ".into() }]);
    let close = parts(m.map(&Report::Close { part: "prt_r".into(), kind: Streamed::Reasoning, text: "I should run echo.".into(), start: 5, end: 9 }));
    assert_eq!(close[0]["time"], json!({"start": 5, "end": 9}));

    let pending = parts(m.map(&Report::ToolPending { part: "prt_t".into(), call_id: "call_fake1".into(), tool: "bash".into() }));
    assert_eq!(
        pending[0],
        json!({"id": "prt_t", "messageID": "msg_1", "sessionID": "ses_1", "type": "tool", "tool": "bash", "callID": "call_fake1", "state": {"status": "pending", "input": {}, "raw": ""}})
    );
    let input = json!({"command": "echo hi", "description": "Print hi"});
    let running = parts(m.map(&Report::ToolRunning {
        part: "prt_t".into(),
        call_id: "call_fake1".into(),
        tool: "bash".into(),
        input: input.clone(),
        start: 10,
        title: None,
        metadata: Some(json!({"output": ""})),
    }));
    assert_eq!(running[0]["state"], json!({"status": "running", "input": input, "time": {"start": 10}, "metadata": {"output": ""}}));
    let out = ToolOutput::new("echo hi", "hi\n", json!({"output": "hi\n", "exit": 0, "truncated": false}));
    let done = parts(m.map(&Report::ToolDone {
        part: "prt_t".into(),
        call_id: "call_fake1".into(),
        tool: "bash".into(),
        input: input.clone(),
        start: 10,
        end: 12,
        result: Ok(out),
    }));
    assert_eq!(
        done[0]["state"],
        json!({"status": "completed", "input": input, "output": "hi\n", "metadata": {"output": "hi\n", "exit": 0, "truncated": false}, "title": "echo hi", "time": {"start": 10, "end": 12}})
    );

    let finish = m.map(&Report::StepFinish {
        step: 0,
        reason: "tool-calls".into(),
        usage: Usage { input: 100, output: 20, ..Default::default() },
        snapshot: None,
        patch: None,
    });
    let finish_parts = parts(finish.clone());
    assert_eq!(finish_parts.len(), 1, "no files changed, no patch part");
    assert_eq!(finish_parts[0]["type"], "step-finish");
    assert_eq!(finish_parts[0]["reason"], "tool-calls");
    assert_eq!(finish_parts[0]["tokens"], json!({"total": 120, "input": 100, "output": 20, "reasoning": 0, "cache": {"write": 0, "read": 0}}));
    assert_eq!(finish_parts[0]["cost"], 0);
    assert!(matches!(&finish[1], Out::StepDone { reason, cost, .. } if reason == "tool-calls" && *cost == 0.0));
}

#[test]
fn priced_steps_carry_their_cost() {
    let pricing = Pricing { input: 2.0, output: 10.0, cache_read: 0.5, cache_write: 0.0 };
    let mut m = PartMapper::new("ses_1").priced(pricing);
    m.map(&Report::StepStart { step: 0, message_id: "msg_1".into(), part: "prt_s".into(), snapshot: None });
    let usage = Usage { input: 100_000, output: 20_000, reasoning: 5_000, cache_read: 40_000, cache_write: 0 };
    let finish = m.map(&Report::StepFinish { step: 0, reason: "stop".into(), usage, snapshot: None, patch: None });
    // 0.2 (input) + 0.25 (output and reasoning) + 0.02 (cache reads).
    let expected = 0.47;
    let part = parts(finish.clone()).remove(0);
    assert!((part["cost"].as_f64().unwrap() - expected).abs() < 1e-9, "{part}");
    assert!(matches!(&finish[1], Out::StepDone { cost, .. } if (cost - expected).abs() < 1e-9));
}

#[test]
fn a_step_that_changed_files_ends_with_a_patch_part() {
    let mut m = PartMapper::new("ses_1");
    m.map(&Report::StepStart { step: 0, message_id: "msg_1".into(), part: "prt_s".into(), snapshot: None });
    let mut out = ToolOutput::new("hello.txt", "Wrote file successfully.", json!({}));
    out.edited.push("/w/hello.txt".into());
    let input = json!({"filePath": "/w/hello.txt", "content": "x"});
    m.map(&Report::ToolDone { part: "prt_t".into(), call_id: "c".into(), tool: "write".into(), input: input.clone(), start: 1, end: 2, result: Ok(out) });
    let err =
        parts(m.map(&Report::ToolDone { part: "prt_u".into(), call_id: "d".into(), tool: "edit".into(), input, start: 1, end: 2, result: Err("boom".into()) }));
    assert_eq!(err[0]["state"]["status"], "error");
    assert_eq!(err[0]["state"]["error"], "boom");
    let finish = parts(m.map(&Report::StepFinish { step: 0, reason: "tool-calls".into(), usage: Usage::default(), snapshot: None, patch: None }));
    assert_eq!(finish.len(), 2);
    assert_eq!(finish[1]["type"], "patch");
    assert_eq!(finish[1]["files"], json!(["/w/hello.txt"]));
    // The next step starts with a clean slate.
    m.map(&Report::StepStart { step: 1, message_id: "msg_2".into(), part: "prt_s2".into(), snapshot: None });
    assert_eq!(m.message_id(), "msg_2");
    assert_eq!(parts(m.map(&Report::StepFinish { step: 1, reason: "stop".into(), usage: Usage::default(), snapshot: None, patch: None })).len(), 1);
}

/// With snapshots, the step-start and step-finish parts carry them, and the
/// patch names the step's start snapshot and every file that changed since,
/// whichever tool changed it.
#[test]
fn a_step_with_snapshots_carries_them_and_a_patch_of_every_changed_file() {
    let mut m = PartMapper::new("ses_1");
    let start = "a".repeat(40);
    let step = parts(m.map(&Report::StepStart { step: 0, message_id: "msg_1".into(), part: "prt_s".into(), snapshot: Some(start.clone()) }));
    assert_eq!(step[0]["snapshot"], json!(start));
    let patch = Some((start.clone(), vec!["/w/made-by-bash.txt".to_string()]));
    let finish = parts(m.map(&Report::StepFinish { step: 0, reason: "tool-calls".into(), usage: Usage::default(), snapshot: Some("b".repeat(40)), patch }));
    assert_eq!(finish[0]["snapshot"], json!("b".repeat(40)));
    assert_eq!(finish[1]["type"], "patch");
    assert_eq!((&finish[1]["hash"], &finish[1]["files"]), (&json!(start), &json!(["/w/made-by-bash.txt"])));
    // A step that changed nothing has no patch.
    m.map(&Report::StepStart { step: 1, message_id: "msg_2".into(), part: "prt_s2".into(), snapshot: Some("b".repeat(40)) });
    let finish = parts(m.map(&Report::StepFinish { step: 1, reason: "stop".into(), usage: Usage::default(), snapshot: Some("b".repeat(40)), patch: None }));
    assert_eq!(finish.len(), 1);
}
