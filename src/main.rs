fn main() {
    for a in duel::gpu::list_adapters() {
        println!("{a}");
    }
}
