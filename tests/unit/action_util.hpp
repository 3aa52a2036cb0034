// Helpers to pick actions of one kind out of a state machine's answer.
#pragma once

#include <gtest/gtest.h>

#include <variant>
#include <vector>

#include "core/actions.hpp"

namespace baton::test {

template <class T>
std::vector<T> all_of(const Actions& actions) {
  std::vector<T> out;
  for (const auto& a : actions) {
    if (const T* t = std::get_if<T>(&a)) out.push_back(*t);
  }
  return out;
}

template <class M>
std::vector<M> messages(const Actions& actions) {
  std::vector<M> out;
  for (const auto& s : all_of<SendMessage>(actions)) {
    if (const M* m = std::get_if<M>(&s.message)) out.push_back(*m);
  }
  return out;
}

// The one action (or message) of a kind: a test failure, not an out-of-range read, when there is not
// exactly one.
template <class T>
T the_only(const std::vector<T>& all) {
  if (all.size() != 1) {
    ADD_FAILURE() << "expected exactly one, got " << all.size();
    return T{};
  }
  return all[0];
}

template <class M>
M the_message(const Actions& actions) {
  return the_only(messages<M>(actions));
}

}  // namespace baton::test
