// Programs that must not compile: each case is built on its own (-DRINGIO_CASE_<name>) by a test
// that expects the compiler to refuse it with the words that say why.
#include <ringio/mapped.hpp>
#include <ringio/shared_atomic_ref.hpp>

#include <atomic>
#include <cstdint>

struct record {
    std::uint32_t ready;
    std::int32_t value;
};

int main() {
#if defined(RINGIO_CASE_atomic)
    // std::atomic is not implicit-lifetime in C++20: the message points to shared_atomic_ref.
    auto view = ringio::mapped<std::atomic<int>>::anonymous();
#elif defined(RINGIO_CASE_volatile)
    auto view = ringio::mapped<volatile int[]>::open("file");
#elif defined(RINGIO_CASE_pointer)
    auto view = ringio::mapped<int*>::open("file");
#elif defined(RINGIO_CASE_write_read_only)
    // A read-only view is PROT_READ: a write through it would be SIGSEGV, so it does not compile.
    auto view = ringio::mapped<const record>::open("file");
    view->value = 1;
#elif defined(RINGIO_CASE_create_read_only)
    auto view = ringio::mapped<const record>::create("file", {}, 0U, 1);
#elif defined(RINGIO_CASE_value_for_options)
    // The options come before the object's constructor arguments: a value cannot be taken for them.
    auto view = ringio::mapped<record>::create("file", record{0, 1});
#elif defined(RINGIO_CASE_no_such_constructor)
    // Arguments that construct no T are refused at the call, before anything is created.
    auto view = ringio::mapped<record>::anonymous(ringio::map_mode::shared, 1, 2, 3);
#elif defined(RINGIO_CASE_store_read_only)
    auto view = ringio::mapped<const record>::open("file");
    ringio::shared_atomic_ref(view->ready).store(1);
#else
#error "no case chosen"
#endif
    return view ? 0 : 1;
}
