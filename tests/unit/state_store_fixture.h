// A state directory of its own for each StateStore test, and the store
// opened there: what the state store's test files share.
#ifndef EGRESS_TESTS_UNIT_STATE_STORE_FIXTURE_H_
#define EGRESS_TESTS_UNIT_STATE_STORE_FIXTURE_H_

#include <stdlib.h>

#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "userspace/common/fs.h"
#include "userspace/daemon/state_store.h"

namespace egress {

class StateStoreDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { RemoveTree(dir_).IgnoreError(); }

  // The store in dir_ (nullptr, with the test failed, when it cannot open).
  std::unique_ptr<StateStore> Open() {
    auto store = StateStore::Open(dir_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::string dir_;
};

}  // namespace egress

#endif  // EGRESS_TESTS_UNIT_STATE_STORE_FIXTURE_H_
