//! Host bindings for the Spin interfaces that wasmtime-wasi(-http) do not provide.

wasmtime::component::bindgen!({
    path: "wit",
    world: "revisit:host/host-services",
    imports: { default: trappable },
    with: {
        "wasi:keyvalue/store.bucket": crate::kv::Bucket,
        "wasi:keyvalue/atomics.cas": crate::kv::Cas,
    },
});
