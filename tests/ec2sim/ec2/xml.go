package ec2

import (
	"encoding/xml"
	"net/http"
	"strconv"
)

// The response documents, element for element as the EC2 Query API (2016-11-15) writes
// them and the AWS SDK's awsEc2query deserializers read them.

type xmlOptions struct {
	State                string `xml:"state"`
	HTTPTokens           string `xml:"httpTokens"`
	HopLimit             int    `xml:"httpPutResponseHopLimit"`
	HTTPEndpoint         string `xml:"httpEndpoint"`
	HTTPProtocolIPv6     string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags string `xml:"instanceMetadataTags"`
}

func toXMLOptions(o Options) xmlOptions {
	return xmlOptions{State: o.State, HTTPTokens: o.HTTPTokens, HopLimit: o.HopLimit, HTTPEndpoint: o.HTTPEndpoint, HTTPProtocolIPv6: o.HTTPProtocolIPv6, InstanceMetadataTags: o.InstanceMetadataTags}
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlTagSet struct {
	Items []xmlTag `xml:"item"`
}

type xmlInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	GroupName        string `xml:"groupName"`
	Tenancy          string `xml:"tenancy"`
}

type xmlMonitoring struct {
	State string `xml:"state"`
}

type xmlInstance struct {
	InstanceID         string           `xml:"instanceId"`
	ImageID            string           `xml:"imageId"`
	InstanceState      xmlInstanceState `xml:"instanceState"`
	PrivateDNSName     string           `xml:"privateDnsName"`
	DNSName            string           `xml:"dnsName"`
	Reason             string           `xml:"reason"`
	AmiLaunchIndex     int              `xml:"amiLaunchIndex"`
	InstanceType       string           `xml:"instanceType"`
	LaunchTime         string           `xml:"launchTime"`
	Placement          xmlPlacement     `xml:"placement"`
	Monitoring         xmlMonitoring    `xml:"monitoring"`
	PrivateIPAddress   string           `xml:"privateIpAddress"`
	Architecture       string           `xml:"architecture"`
	RootDeviceType     string           `xml:"rootDeviceType"`
	RootDeviceName     string           `xml:"rootDeviceName"`
	VirtualizationType string           `xml:"virtualizationType"`
	TagSet             *xmlTagSet       `xml:"tagSet,omitempty"`
	Hypervisor         string           `xml:"hypervisor"`
	MetadataOptions    xmlOptions       `xml:"metadataOptions"`
	PlatformDetails    string           `xml:"platformDetails"`
}

type xmlInstancesSet struct {
	Items []xmlInstance `xml:"item"`
}

type xmlGroupSet struct{}

type xmlReservation struct {
	ReservationID string          `xml:"reservationId"`
	OwnerID       string          `xml:"ownerId"`
	GroupSet      xmlGroupSet     `xml:"groupSet"`
	InstancesSet  xmlInstancesSet `xml:"instancesSet"`
}

type xmlReservationSet struct {
	Items []xmlReservation `xml:"item"`
}

type describeInstancesResponse struct {
	XMLName        xml.Name          `xml:"DescribeInstancesResponse"`
	Xmlns          string            `xml:"xmlns,attr"`
	RequestID      string            `xml:"requestId"`
	ReservationSet xmlReservationSet `xml:"reservationSet"`
	NextToken      string            `xml:"nextToken,omitempty"`
}

type modifyInstanceMetadataOptionsResponse struct {
	XMLName                 xml.Name   `xml:"ModifyInstanceMetadataOptionsResponse"`
	Xmlns                   string     `xml:"xmlns,attr"`
	RequestID               string     `xml:"requestId"`
	InstanceID              string     `xml:"instanceId"`
	InstanceMetadataOptions xmlOptions `xml:"instanceMetadataOptions"`
}

type xmlAccountLevel struct {
	HTTPTokens              string `xml:"httpTokens,omitempty"`
	HopLimit                int    `xml:"httpPutResponseHopLimit,omitempty"`
	HTTPEndpoint            string `xml:"httpEndpoint,omitempty"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags,omitempty"`
	ManagedBy               string `xml:"managedBy,omitempty"`
	ManagedExceptionMessage string `xml:"managedExceptionMessage,omitempty"`
	HTTPTokensEnforced      string `xml:"httpTokensEnforced,omitempty"`
}

type getInstanceMetadataDefaultsResponse struct {
	XMLName      xml.Name        `xml:"GetInstanceMetadataDefaultsResponse"`
	Xmlns        string          `xml:"xmlns,attr"`
	RequestID    string          `xml:"requestId"`
	AccountLevel xmlAccountLevel `xml:"accountLevel"`
}

type xmlRegion struct {
	RegionName  string `xml:"regionName"`
	Endpoint    string `xml:"regionEndpoint"`
	OptInStatus string `xml:"optInStatus"`
}

type xmlRegionInfo struct {
	Items []xmlRegion `xml:"item"`
}

type describeRegionsResponse struct {
	XMLName    xml.Name      `xml:"DescribeRegionsResponse"`
	Xmlns      string        `xml:"xmlns,attr"`
	RequestID  string        `xml:"requestId"`
	RegionInfo xmlRegionInfo `xml:"regionInfo"`
}

type xmlImage struct {
	ImageID            string `xml:"imageId"`
	ImageLocation      string `xml:"imageLocation"`
	ImageState         string `xml:"imageState"`
	ImageOwnerID       string `xml:"imageOwnerId"`
	IsPublic           bool   `xml:"isPublic"`
	Architecture       string `xml:"architecture"`
	ImageType          string `xml:"imageType"`
	Name               string `xml:"name"`
	RootDeviceType     string `xml:"rootDeviceType"`
	VirtualizationType string `xml:"virtualizationType"`
	Hypervisor         string `xml:"hypervisor"`
	ImdsSupport        string `xml:"imdsSupport,omitempty"`
}

type xmlImagesSet struct {
	Items []xmlImage `xml:"item"`
}

type describeImagesResponse struct {
	XMLName   xml.Name     `xml:"DescribeImagesResponse"`
	Xmlns     string       `xml:"xmlns,attr"`
	RequestID string       `xml:"requestId"`
	ImagesSet xmlImagesSet `xml:"imagesSet"`
}

// xmlError is the Query API's error document.
type xmlError struct {
	XMLName   xml.Name `xml:"Response"`
	Code      string   `xml:"Errors>Error>Code"`
	Message   string   `xml:"Errors>Error>Message"`
	RequestID string   `xml:"RequestID"`
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// The errors the simulator gives, with the real service's codes and HTTP statuses.
func errInvalidParameterValue(msg string) *APIError {
	return &APIError{http.StatusBadRequest, "InvalidParameterValue", msg}
}

func errUnknownParameter(name string) *APIError {
	return &APIError{http.StatusBadRequest, "UnknownParameter", "The parameter " + name + " is not recognized"}
}

func errMissingParameter(name string) *APIError {
	return &APIError{http.StatusBadRequest, "MissingParameter", "The request must contain the parameter " + name}
}

func errDryRun() *APIError {
	return &APIError{http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."}
}

func errThrottled() *APIError {
	return &APIError{http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded."}
}

func errMalformedID(id string) *APIError {
	return &APIError{http.StatusBadRequest, "InvalidInstanceID.Malformed", `Invalid id: "` + id + `"`}
}

func errInvalidAction(action string) *APIError {
	return &APIError{http.StatusBadRequest, "InvalidAction", "The action " + action + " is not valid for this web service."}
}

func errBadHopLimit(v string) *APIError {
	return errInvalidParameterValue("Value (" + v + ") for parameter httpPutResponseHopLimit is invalid. Valid values are integers from 1 to 64.")
}

func errBadEnum(param, v string, valid ...string) *APIError {
	msg := "Value (" + v + ") for parameter " + param + " is invalid. Valid values are:"
	for i, x := range valid {
		if i > 0 {
			msg += ","
		}
		msg += " " + x
	}
	return errInvalidParameterValue(msg)
}

func errMaxResults(n int) *APIError {
	bound := "greater than or equal to 5"
	if n > 1000 {
		bound = "less than or equal to 1000"
	}
	return errInvalidParameterValue("Value ( " + strconv.Itoa(n) + " ) for parameter maxResults is invalid. Expecting a value " + bound + ".")
}
