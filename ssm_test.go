package imdsmend

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSSMAssociation: packaging/ssm/imdsmend-association.json is input for `aws ssm
// create-association --cli-input-json`: it runs the SSM document beside it (which runs
// imdsmend apply --format json) on the tagged instances, on a schedule, at most
// MaxConcurrency at once and stopping after MaxErrors failures, with parameters the
// document declares and accepts.
func TestSSMAssociation(t *testing.T) {
	var assoc struct {
		Name            string `json:"Name"`
		AssociationName string `json:"AssociationName"`
		Targets         []struct {
			Key    string   `json:"Key"`
			Values []string `json:"Values"`
		} `json:"Targets"`
		ScheduleExpression string              `json:"ScheduleExpression"`
		MaxConcurrency     string              `json:"MaxConcurrency"`
		MaxErrors          string              `json:"MaxErrors"`
		ComplianceSeverity string              `json:"ComplianceSeverity"`
		Parameters         map[string][]string `json:"Parameters"`
	}
	decodeStrict(t, "packaging/ssm/imdsmend-association.json", &assoc)
	var doc struct {
		Parameters map[string]struct {
			AllowedPattern string `json:"allowedPattern"`
		} `json:"parameters"`
		MainSteps []struct {
			Inputs struct {
				RunCommand []string `json:"runCommand"`
			} `json:"inputs"`
		} `json:"mainSteps"`
	}
	data, err := os.ReadFile("packaging/ssm/" + assoc.Name + ".json")
	if err != nil {
		t.Fatalf("the association runs document %q, which packaging/ssm does not hold: %v", assoc.Name, err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.MainSteps) != 1 || !strings.Contains(strings.Join(doc.MainSteps[0].Inputs.RunCommand, "\n"), "imdsmend apply --format json") {
		t.Errorf("document %s does not run imdsmend apply --format json", assoc.Name)
	}
	// SSM's own patterns: a count or a percentage; rate() or cron().
	limit := regexp.MustCompile(`^([1-9][0-9]*|[1-9][0-9]?%|100%)$`)
	errorsLimit := regexp.MustCompile(`^([0-9]+|[0-9]{1,2}%|100%)$`)
	if !limit.MatchString(assoc.MaxConcurrency) || !errorsLimit.MatchString(assoc.MaxErrors) {
		t.Errorf("MaxConcurrency %q, MaxErrors %q: want counts or percentages", assoc.MaxConcurrency, assoc.MaxErrors)
	}
	if !regexp.MustCompile(`^(rate\([1-9][0-9]* (minutes|hours|days)\)|cron\(.+\))$`).MatchString(assoc.ScheduleExpression) {
		t.Errorf("ScheduleExpression %q is not rate(...) or cron(...)", assoc.ScheduleExpression)
	}
	if assoc.AssociationName == "" || len(assoc.Targets) == 0 || assoc.Targets[0].Key == "" || len(assoc.Targets[0].Values) == 0 {
		t.Errorf("association %+v: want a name and targets", assoc)
	}
	if !regexp.MustCompile(`^(CRITICAL|HIGH|MEDIUM|LOW|UNSPECIFIED)$`).MatchString(assoc.ComplianceSeverity) {
		t.Errorf("ComplianceSeverity %q", assoc.ComplianceSeverity)
	}
	for name, values := range assoc.Parameters {
		p, ok := doc.Parameters[name]
		if !ok {
			t.Errorf("parameter %q is not declared by document %s", name, assoc.Name)
			continue
		}
		for _, v := range values {
			if p.AllowedPattern != "" && !regexp.MustCompile(p.AllowedPattern).MatchString(v) {
				t.Errorf("parameter %s = %q does not match the document's allowedPattern %s", name, v, p.AllowedPattern)
			}
		}
	}
}

// decodeStrict decodes a JSON file, refusing fields v does not have.
func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
