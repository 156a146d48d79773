//! Which public types may cross threads.
//!
//! Values (`Elapsed`, `GreenletId`, `JoinError`, ...) may be sent to other
//! threads; handles to a hub's greenlets (`Greenlet`, `Current`, `Iwait`)
//! must not be, since a greenlet never leaves the thread that spawned it.
//! The negative cases are checked at compile time with the ambiguity trick
//! of the `static_assertions` crate: `assert_not_send!` only compiles when
//! the type is *not* `Send`.

use greenlet::monitor::Report;
use greenlet::stack::GuardKind;
use greenlet::{Builder, Current, Elapsed, Greenlet, GreenletId, Iwait, JoinError};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}
fn assert_send_sync<T: Send + Sync>() {}
fn assert_static<T: 'static>() {}

/// Compiles only if `$t` is not `Send`.
macro_rules! assert_not_send {
    ($t:ty) => {{
        trait AmbiguousIfSend<A> {
            fn some_item() {}
        }
        impl<T: ?Sized> AmbiguousIfSend<()> for T {}
        #[allow(dead_code)]
        struct Invalid;
        impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}
        let _ = <$t as AmbiguousIfSend<_>>::some_item;
    }};
}

/// Compiles only if `$t` is not `Sync`.
macro_rules! assert_not_sync {
    ($t:ty) => {{
        trait AmbiguousIfSync<A> {
            fn some_item() {}
        }
        impl<T: ?Sized> AmbiguousIfSync<()> for T {}
        #[allow(dead_code)]
        struct Invalid;
        impl<T: ?Sized + Sync> AmbiguousIfSync<Invalid> for T {}
        let _ = <$t as AmbiguousIfSync<_>>::some_item;
    }};
}

#[test]
fn plain_values_are_send_and_sync() {
    assert_send_sync::<Elapsed>();
    assert_send_sync::<GreenletId>();
    assert_send_sync::<Builder>();
    assert_send_sync::<GuardKind>();
    assert_send_sync::<Report>();
    assert_static::<Elapsed>();
    assert_static::<JoinError>();
}

#[test]
fn join_error_is_send_and_sync() {
    // It carries the panic payload, a `Box<dyn Any + Send>`, like
    // `std::thread::Result`, yet is `Sync`, so `?` turns it into a
    // `Box<dyn Error + Send + Sync>`.
    assert_send::<JoinError>();
    assert_send_sync::<JoinError>();
    assert_send::<Result<u32, JoinError>>();
    let boxed: Box<dyn std::error::Error + Send + Sync> = greenlet::spawn(|| panic!("boxed"))
        .join()
        .unwrap_err()
        .into();
    assert_eq!(boxed.to_string(), "greenlet panicked: boxed");
    let e = greenlet::spawn(|| panic!("sent across"))
        .join()
        .unwrap_err();
    let msg = std::thread::spawn(move || e.panic_message().map(str::to_owned))
        .join()
        .unwrap();
    assert_eq!(msg.as_deref(), Some("sent across"));
}

#[test]
fn elapsed_and_ids_cross_threads() {
    let e = greenlet::with_timeout(std::time::Duration::from_millis(1), || {
        greenlet::sleep(std::time::Duration::from_secs(60))
    })
    .unwrap_err();
    let id = greenlet::spawn(|| greenlet::current().unwrap().id())
        .join()
        .unwrap();
    let (e2, id2) = std::thread::spawn(move || (e, id)).join().unwrap();
    assert_eq!(e2, e);
    assert_eq!(id2, id);
    assert_sync::<(Elapsed, GreenletId)>();
}

#[test]
fn greenlet_handles_stay_on_their_thread() {
    assert_not_send!(Greenlet<()>);
    assert_not_sync!(Greenlet<()>);
    assert_not_send!(Greenlet<u32>);
    assert_not_send!(Current);
    assert_not_sync!(Current);
    assert_not_send!(Iwait<()>);
    assert_not_sync!(Iwait<()>);
}
