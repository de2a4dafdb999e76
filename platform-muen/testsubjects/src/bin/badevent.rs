//! Raises an event that is not in its sinfo: Muen ignores unknown event
//! numbers, so the subject must keep running and exit normally.
#![no_std]
#![no_main]

muen_subject::subject_main!(main);

fn main(rt: &mut muen_subject::Runtime) -> i32 {
    let n = 42;
    let known = rt
        .sinfo
        .resources()
        .flatten()
        .any(|r| matches!(r.data, muen_abi::sinfo::ResourceData::Event(e) if e == n));
    log::info!("raising unknown event {n} (in sinfo: {known})");
    muen_subject::exit::raise_event(n);
    muen_testsubjects::result(
        !known,
        format_args!("still running after unknown event {n}"),
    );
    0
}
