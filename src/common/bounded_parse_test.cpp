#include "common/bounded_parse.hpp"

#include <gtest/gtest.h>

#include <string>

#include "common/test_documents.hpp"

namespace edgeloop {
namespace {

TEST(BoundedYaml, ConvertsScalarsMappingsAndSequences) {
  auto j = ParseYamlBounded("name: p\nn: 3\nx: 0.5\nok: true\nq: \"3\"\nl: [1, two]\nz: ~\n", "t");
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ((*j)["name"], "p");
  EXPECT_EQ((*j)["n"], 3);
  EXPECT_DOUBLE_EQ((*j)["x"].get<double>(), 0.5);
  EXPECT_EQ((*j)["ok"], true);
  EXPECT_EQ((*j)["q"], "3");  // quoted stays a string
  EXPECT_EQ((*j)["l"], nlohmann::json::array({1, "two"}));
  EXPECT_TRUE((*j)["z"].is_null());
}

TEST(BoundedYaml, ExpandsSmallAliases) {
  auto j = ParseYamlBounded("base: &b {lr: 0.1, epochs: 2}\ncopy: *b\n", "t");
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ((*j)["copy"]["epochs"], 2);
  EXPECT_EQ((*j)["copy"], (*j)["base"]);
}

TEST(BoundedYaml, RefusesAliasBombNamingTheLimit) {
  std::string doc = testing::AliasBombYaml();
  ASSERT_LT(doc.size(), 800u);
  auto j = ParseYamlBounded(doc, "POST /v1/pipelines");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().code, Errc::kFormat);
  EXPECT_NE(j.error().message.find("max_nodes"), std::string::npos) << j.error().message;
  EXPECT_NE(j.error().message.find("POST /v1/pipelines"), std::string::npos);
}

TEST(BoundedYaml, RefusesDeepNesting) {
  std::string doc(200, '[');
  doc += std::string(200, ']');
  auto j = ParseYamlBounded(doc, "t");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find("max_depth"), std::string::npos) << j.error().message;
}

TEST(BoundedYaml, RefusesOversizedDocumentBeforeParsing) {
  ParseLimits limits;
  limits.max_bytes = 100;
  auto j = ParseYamlBounded(std::string(101, 'a'), "t", limits);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find("max_bytes"), std::string::npos);
}

TEST(BoundedYaml, RefusesDuplicateKeysAndNamesTheLine) {
  auto j = ParseYamlBounded("a: 1\nb: 2\na: 3\n", "spec.yaml");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find("spec.yaml: line 3: duplicate key 'a'"), std::string::npos)
      << j.error().message;
}

TEST(BoundedYaml, MalformedDocumentGivesTheLine) {
  auto j = ParseYamlBounded("a: [1, 2\nb: 3\n", "spec.yaml");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find("spec.yaml: line"), std::string::npos) << j.error().message;
}

TEST(BoundedJson, ParsesWithinLimits) {
  auto j = ParseJsonBounded(R"({"a": [1, 2, {"b": "c"}]})", "body");
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ((*j)["a"][2]["b"], "c");
}

TEST(BoundedJson, RefusesDeepNesting) {
  std::string doc(100000, '[');
  doc += std::string(100000, ']');
  ParseLimits limits;
  limits.max_bytes = doc.size();
  auto j = ParseJsonBounded(doc, "body", limits);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find("max_depth"), std::string::npos) << j.error().message;
}

TEST(BoundedJson, RefusesTooManyValues) {
  std::string doc = "[";
  for (int i = 0; i < 2000; ++i) doc += (i ? ",0" : "0");
  doc += "]";
  ParseLimits limits;
  limits.max_nodes = 1000;
  auto j = ParseJsonBounded(doc, "body", limits);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find("max_nodes"), std::string::npos);
}

TEST(BoundedJson, RefusesLongStringsAndBadSyntax) {
  ParseLimits limits;
  limits.max_string = 10;
  auto j = ParseJsonBounded(R"({"k": "0123456789abc"})", "body", limits);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find("max_string"), std::string::npos);
  auto bad = ParseJsonBounded(R"({"k": )", "body");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("body: not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace edgeloop
